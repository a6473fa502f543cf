//! Human ages, formatted exactly like kubectl's `AGE` column
//! (k8s.io/apimachinery/pkg/util/duration.HumanDuration).

use jiff::Timestamp;

/// kubectl-style age of something created at `created`, seen at `now`.
pub fn format_age(created: Timestamp, now: Timestamp) -> String {
    let seconds = now.as_second() - created.as_second();
    human_duration_seconds(seconds)
}

/// kubectl's HumanDuration over whole seconds. Clock skew up to a second reads "0s";
/// anything further in the future is "<invalid>", as kubectl prints.
pub fn human_duration_seconds(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    let minutes = seconds / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    let years = days / 365;
    if seconds < 60 * 2 {
        format!("{seconds}s")
    } else if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        }
    } else if minutes < 60 * 3 {
        format!("{minutes}m")
    } else if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        }
    } else if hours < 24 * 365 * 2 {
        format!("{days}d")
    } else if hours < 24 * 365 * 8 {
        let d = days % 365;
        if d == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{d}d")
        }
    } else {
        format!("{years}y")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_kubectl_human_duration_table() {
        // Cases from apimachinery's duration_test.go.
        let cases = [
            (1, "1s"),
            (70, "70s"),
            (190, "3m10s"),
            (300, "5m"),
            (3600, "60m"),
            (10800, "3h"),
            (3 * 3600 + 20 * 60, "3h20m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (3 * 86400 + 5 * 3600, "3d5h"),
            (8 * 86400, "8d"),
            (367 * 86400, "367d"),
            (2 * 365 * 86400, "2y"),
            (2 * 365 * 86400 + 10 * 86400, "2y10d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration_seconds(secs), want, "for {secs}s");
        }
    }

    #[test]
    fn future_times_are_zero_or_invalid() {
        assert_eq!(human_duration_seconds(-1), "0s");
        assert_eq!(human_duration_seconds(-5), "<invalid>");
    }

    #[test]
    fn format_age_uses_the_difference() {
        let created: Timestamp = "2026-11-22T03:47:50Z".parse().unwrap();
        let now: Timestamp = "2026-11-22T04:47:50Z".parse().unwrap();
        assert_eq!(format_age(created, now), "60m");
    }
}
