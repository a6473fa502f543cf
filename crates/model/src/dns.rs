//! DNS label rules and the `--service-name-template` that turns a StatefulSet name into a
//! Service name.
//!
//! Service names must be DNS-1035 labels (lowercase letters, digits and `-`, start with a
//! letter, end with a letter or digit, at most 63 characters), while StatefulSet names are
//! DNS-1123 subdomains: they may start with a digit, contain dots and be up to 253 characters.
//! So a template rendered with a StatefulSet name is not always a valid Service name; when it
//! is not, [`ServiceNameTemplate::render`] derives one deterministically and says so.

use std::fmt;

/// Longest DNS label.
pub const MAX_LABEL_LEN: usize = 63;

/// Prefix put in front of a rendered name that does not start with a letter.
const LETTER_PREFIX: &str = "s-";

/// `[a-z]([-a-z0-9]*[a-z0-9])?`, at most 63 characters (Service names).
pub fn is_dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b.len() <= MAX_LABEL_LEN && b[0].is_ascii_lowercase() && is_label_body(b)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters (Service port names and others).
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL_LEN
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && is_label_body(b)
}

fn is_label_body(b: &[u8]) -> bool {
    b.iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.last().is_some_and(|c| *c != b'-')
}

/// A parsed `--service-name-template`: literal text with `{name}` (the StatefulSet name) and
/// optionally `{namespace}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceNameTemplate {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    Name,
    Namespace,
}

/// Why a `--service-name-template` was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error(
        "service name template {template:?} has no {{name}}: every StatefulSet in a namespace would share one Service"
    )]
    NoName { template: String },
    #[error(
        "service name template {template:?} has unknown placeholder {{{placeholder}}} (known: {{name}}, {{namespace}})"
    )]
    UnknownPlaceholder {
        template: String,
        placeholder: String,
    },
    #[error("service name template {template:?} has an unclosed '{{'")]
    Unclosed { template: String },
}

/// The Service name chosen for a StatefulSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedName {
    /// A valid DNS-1035 label.
    pub name: String,
    /// Set when `name` differs from the plain rendering of the template, explaining why.
    pub warning: Option<String>,
}

/// Why no Service name could be rendered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    /// With `metadata.generateName` the name is not known at admission time.
    #[error("the StatefulSet has no name yet (generateName?), so no serviceName can be derived")]
    EmptyName,
}

impl Default for ServiceNameTemplate {
    fn default() -> Self {
        ServiceNameTemplate {
            parts: vec![Part::Name],
        }
    }
}

impl fmt::Display for ServiceNameTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(s) => f.write_str(s)?,
                Part::Name => f.write_str("{name}")?,
                Part::Namespace => f.write_str("{namespace}")?,
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for ServiceNameTemplate {
    type Err = TemplateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl ServiceNameTemplate {
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or_else(|| TemplateError::Unclosed {
                template: template.to_owned(),
            })?;
            parts.push(match &after[..close] {
                "name" => Part::Name,
                "namespace" => Part::Namespace,
                other => {
                    return Err(TemplateError::UnknownPlaceholder {
                        template: template.to_owned(),
                        placeholder: other.to_owned(),
                    });
                }
            });
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        if !parts.contains(&Part::Name) {
            return Err(TemplateError::NoName {
                template: template.to_owned(),
            });
        }
        Ok(ServiceNameTemplate { parts })
    }

    /// The plain rendering, which may not be a valid Service name.
    pub fn render_raw(&self, name: &str, namespace: &str) -> String {
        let mut out = String::with_capacity(name.len() + 16);
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Name => out.push_str(name),
                Part::Namespace => out.push_str(namespace),
            }
        }
        out
    }

    /// Renders the template for StatefulSet `name` in `namespace` and makes the result a valid
    /// DNS-1035 label. The same inputs always give the same output, so the webhook and the
    /// reconciler agree on the name.
    pub fn render(&self, name: &str, namespace: &str) -> Result<RenderedName, RenderError> {
        if name.is_empty() {
            return Err(RenderError::EmptyName);
        }
        let raw = self.render_raw(name, namespace);
        if is_dns1035_label(&raw) {
            return Ok(RenderedName {
                name: raw,
                warning: None,
            });
        }
        let derived = to_dns1035_label(&raw);
        let warning = format!(
            "serviceName {derived:?} was derived from {raw:?}, which is not a valid Service name (a DNS-1035 label: lowercase letters, digits and '-', starting with a letter, at most 63 characters)"
        );
        Ok(RenderedName {
            name: derived,
            warning: Some(warning),
        })
    }
}

/// Makes any string a DNS-1035 label, deterministically: lowercase, every other character
/// becomes `-`, `s-` in front when it does not start with a letter, and when too long it is cut
/// and ends with a hash of the whole input so that distinct long names stay distinct.
pub fn to_dns1035_label(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s.insert_str(0, LETTER_PREFIX);
    }
    let trimmed_len = s.trim_end_matches('-').len();
    s.truncate(trimmed_len);
    if s.len() > MAX_LABEL_LEN {
        let hash = format!("{:08x}", fnv1a32(raw.as_bytes()));
        // 63 = kept + '-' + 8 hex digits; all ASCII, so byte slicing is safe.
        s.truncate(MAX_LABEL_LEN - 1 - hash.len());
        let kept = s.trim_end_matches('-').len();
        s.truncate(kept);
        s.push('-');
        s.push_str(&hash);
    }
    s
}

/// FNV-1a: tiny, stable across platforms and releases (unlike std's hasher).
fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1035_accepts_and_rejects() {
        for ok in ["a", "web", "web-0", "a1", "a-b-c", &"a".repeat(63)] {
            assert!(is_dns1035_label(ok), "{ok}");
        }
        for bad in [
            "",
            "0web",
            "-web",
            "web-",
            "Web",
            "we.b",
            "we_b",
            &"a".repeat(64),
            "wéb",
        ] {
            assert!(!is_dns1035_label(bad), "{bad}");
        }
    }

    #[test]
    fn dns1123_allows_leading_digit() {
        assert!(is_dns1123_label("80-tcp"));
        assert!(is_dns1123_label("http"));
        assert!(!is_dns1123_label("-http"));
        assert!(!is_dns1123_label("HTTP"));
        assert!(!is_dns1123_label(""));
    }

    #[test]
    fn default_template_is_the_name() {
        let t = ServiceNameTemplate::default();
        let r = t.render("web", "default").unwrap();
        assert_eq!(r.name, "web");
        assert_eq!(r.warning, None);
        assert_eq!(t.to_string(), "{name}");
    }

    #[test]
    fn template_with_suffix_and_namespace() {
        let t = ServiceNameTemplate::parse("{name}-hl").unwrap();
        assert_eq!(t.render("db", "prod").unwrap().name, "db-hl");
        let t = ServiceNameTemplate::parse("{namespace}-{name}").unwrap();
        assert_eq!(t.render("db", "prod").unwrap().name, "prod-db");
        assert_eq!(t.to_string(), "{namespace}-{name}");
    }

    #[test]
    fn template_errors_name_the_problem() {
        assert_eq!(
            ServiceNameTemplate::parse("fixed"),
            Err(TemplateError::NoName {
                template: "fixed".into()
            })
        );
        let err = ServiceNameTemplate::parse("{name}-{cluster}").unwrap_err();
        assert_eq!(
            err,
            TemplateError::UnknownPlaceholder {
                template: "{name}-{cluster}".into(),
                placeholder: "cluster".into()
            }
        );
        assert!(err.to_string().contains("{cluster}"), "{err}");
        assert!(matches!(
            ServiceNameTemplate::parse("{name"),
            Err(TemplateError::Unclosed { .. })
        ));
    }

    #[test]
    fn leading_digit_gets_prefix_and_warning() {
        let r = ServiceNameTemplate::default()
            .render("0db", "default")
            .unwrap();
        assert_eq!(r.name, "s-0db");
        let w = r.warning.unwrap();
        assert!(w.contains("\"s-0db\"") && w.contains("\"0db\""), "{w}");
    }

    #[test]
    fn dots_become_dashes() {
        let r = ServiceNameTemplate::default()
            .render("web.v2", "default")
            .unwrap();
        assert_eq!(r.name, "web-v2");
        assert!(r.warning.is_some());
    }

    #[test]
    fn long_names_are_cut_with_a_hash_and_stay_distinct() {
        let a = "a".repeat(100);
        let mut b = a.clone();
        b.push('b');
        let t = ServiceNameTemplate::default();
        let ra = t.render(&a, "ns").unwrap();
        let rb = t.render(&b, "ns").unwrap();
        assert_eq!(ra.name.len(), 63);
        assert!(is_dns1035_label(&ra.name), "{}", ra.name);
        assert!(is_dns1035_label(&rb.name), "{}", rb.name);
        assert_ne!(ra.name, rb.name);
        // deterministic
        assert_eq!(t.render(&a, "ns").unwrap(), ra);
    }

    #[test]
    fn cut_point_on_a_dash_does_not_leave_double_dash_before_hash_invalid() {
        // the 54th character is a '.', which becomes '-': it must not end the kept part
        let name = format!("{}.{}", "a".repeat(53), "b".repeat(40));
        let r = ServiceNameTemplate::default().render(&name, "ns").unwrap();
        assert!(is_dns1035_label(&r.name), "{}", r.name);
        assert!(!r.name.contains("--"), "{}", r.name);
    }

    #[test]
    fn exactly_63_is_kept() {
        let name = "a".repeat(63);
        let r = ServiceNameTemplate::default().render(&name, "ns").unwrap();
        assert_eq!(r.name, name);
        assert_eq!(r.warning, None);
    }

    #[test]
    fn empty_name_cannot_render() {
        assert_eq!(
            ServiceNameTemplate::default().render("", "ns"),
            Err(RenderError::EmptyName)
        );
    }

    #[test]
    fn garbage_input_still_yields_a_label() {
        for raw in ["---", "9", "Ü", "a..b", "-"] {
            let s = to_dns1035_label(raw);
            assert!(is_dns1035_label(&s), "{raw:?} -> {s:?}");
        }
    }
}
