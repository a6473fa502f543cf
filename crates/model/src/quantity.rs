//! Kubernetes resource quantities (`1Gi`, `500M`, `1e9`) as byte counts and back, for claim
//! sizes. The grammar is apimachinery's `resource.Quantity`
//! (k8s.io/apimachinery/pkg/api/resource/quantity.go): a decimal number, then a binary
//! (`Ki`…`Ei`), decimal (`k`…`E`, `m`) or exponent (`e3`) suffix.

/// Bytes in a Kubernetes quantity (`1Gi`, `500M`, `1.5Ti`, `1e9`, `2048`). Fractions of a
/// byte round up, as the apiserver does. `None` for anything unparsable or negative.
pub fn quantity_bytes(quantity: &str) -> Option<u128> {
    let q = quantity.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    if number.is_empty() {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    // Work in integers scaled by 10^frac_len to avoid float rounding.
    let digits = format!("{int_part}{frac_part}");
    let mantissa: u128 = digits.parse().ok()?;
    let frac_len = u32::try_from(frac_part.len()).ok()?;
    let (multiplier, extra_pow10): (u128, i32) = match suffix {
        "" => (1, 0),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "m" => (1, -3),
        s if s.starts_with(['e', 'E']) => (1, s[1..].parse().ok()?),
        _ => return None,
    };
    let numerator = mantissa.checked_mul(multiplier)?;
    let pow = extra_pow10 - i32::try_from(frac_len).ok()?;
    if pow >= 0 {
        numerator.checked_mul(10u128.checked_pow(u32::try_from(pow).ok()?)?)
    } else {
        let div = 10u128.checked_pow(u32::try_from(-pow).ok()?)?;
        Some(numerator.div_ceil(div))
    }
}

/// Bytes as a binary-suffixed quantity (`3Gi`, `1536Mi`), exact when possible.
pub fn format_bytes(bytes: u128) -> String {
    const UNITS: [(&str, u32); 6] = [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ];
    for (unit, shift) in UNITS {
        let size = 1u128 << shift;
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    // Not a whole number of any unit: one decimal of the largest unit that fits.
    for (unit, shift) in UNITS {
        let size = 1u128 << shift;
        if bytes >= size {
            let tenths = (bytes * 10 + size / 2) / size;
            return format!("{}.{}{unit}", tenths / 10, tenths % 10);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity_bytes("1Gi"), Some(1 << 30));
        assert_eq!(quantity_bytes("500M"), Some(500_000_000));
        assert_eq!(quantity_bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(quantity_bytes("2048"), Some(2048));
        assert_eq!(quantity_bytes("1e3"), Some(1000));
        assert_eq!(quantity_bytes("1500m"), Some(2), "fractions round up");
        assert_eq!(quantity_bytes("Gi"), None);
        assert_eq!(quantity_bytes("-1Gi"), None);
        assert_eq!(quantity_bytes("1Zi"), None);
        assert_eq!(format_bytes(3 << 30), "3Gi");
        assert_eq!(format_bytes(1536 << 20), "1536Mi");
        assert_eq!(format_bytes(1_500_000_000), "1.4Gi");
        assert_eq!(format_bytes(0), "0");
    }
}
