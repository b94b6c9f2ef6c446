//! Stable `X.Y.Z` tags and the bump policy: by default only a newer patch of the pinned `X.Y`.

use std::fmt;

use super::pin::Grammar;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    /// A stable tag, for the registry's tags and the pin's alike: the pin grammar's `tag` pattern
    /// (lib/image-pin.json, read by lib/image.nix too), `N.N.N` with each N `0` or one to nine digits without a
    /// leading zero. Nine digits keep every reader exact, and no leading zeros means no two spellings name one
    /// version (`1.26.05` is not `1.26.5`). `-next` pre-releases, `latest`, `X.Y` and `X` aliases are not
    /// stable versions.
    pub fn parse_stable(tag: &str) -> Option<Version> {
        if !Grammar::get().matches("tag", tag) {
            return None;
        }
        let mut numbers = tag.split('.').map(|part| part.parse().ok());
        Some(Version {
            major: numbers.next()??,
            minor: numbers.next()??,
            patch: numbers.next()??,
        })
    }
}

/// A tag shaped like a version, three dot-separated runs of digits, that the grammar refuses (a leading zero,
/// more than nine digits): skipped and counted, never read as the version it resembles.
pub fn is_odd(tag: &str) -> bool {
    let parts: Vec<&str> = tag.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && Version::parse_stable(tag).is_none()
}

/// The odd tags of a tag list, in its order.
pub fn odd_tags(tags: &[String]) -> Vec<String> {
    tags.iter().filter(|tag| is_odd(tag)).cloned().collect()
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    pub allow_minor: bool,
    pub allow_major: bool,
    pub allow_downgrade: bool,
}

impl Policy {
    /// Why moving from `current` to `target` needs a flag (naming every flag it needs), or None when the
    /// policy allows it.
    pub fn refusal(&self, current: Version, target: Version) -> Option<String> {
        let downgrade = target < current;
        let major = target.major != current.major;
        let minor = !major && target.minor != current.minor;
        let mut flags = Vec::new();
        if downgrade && !self.allow_downgrade {
            flags.push("--allow-downgrade");
        }
        if major && !self.allow_major {
            flags.push("--allow-major");
        }
        if minor && !self.allow_minor && !self.allow_major {
            flags.push("--allow-minor");
        }
        if flags.is_empty() {
            return None;
        }
        let step = if major {
            "major"
        } else if minor {
            "minor"
        } else {
            "patch"
        };
        let kind = if downgrade {
            format!("a {step} downgrade (an older version)")
        } else {
            format!("a {step} move")
        };
        Some(format!(
            "{target} is {kind} from {current}; pass {}",
            flags.join(" ")
        ))
    }

    /// The newest stable tag the policy allows that is newer than `current`.
    pub fn newest<'a>(&self, current: Version, tags: &'a [String]) -> Option<(&'a str, Version)> {
        tags.iter()
            .filter_map(|tag| Version::parse_stable(tag).map(|version| (tag.as_str(), version)))
            .filter(|(_, version)| *version > current && self.refusal(current, *version).is_none())
            .max_by_key(|(_, version)| *version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(tag: &str) -> Version {
        Version::parse_stable(tag).unwrap()
    }

    #[test]
    fn only_plain_x_y_z_is_stable() {
        assert_eq!(
            v("1.26.10"),
            Version {
                major: 1,
                minor: 26,
                patch: 10
            }
        );
        for tag in [
            "1.26.4-next",
            "latest",
            "1.26",
            "1",
            "1.26.1.2",
            "v1.26.1",
            "1..1",
            "1.26.x",
            "1.26.05",
            "01.26.5",
            "1.26.1234567890",
            "1.26.+5",
        ] {
            assert_eq!(Version::parse_stable(tag), None, "{tag}");
        }
        assert_eq!(v("0.0.0").patch, 0);
        assert_eq!(v("1.26.999999999").patch, 999_999_999);
    }

    #[test]
    fn odd_tags_are_version_shaped_tags_the_grammar_refuses() {
        let tags: Vec<String> = [
            "1.26.05",
            "1.26.1234567890",
            "1.26.5",
            "latest",
            "1.26.4-next",
            "1.26",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        assert_eq!(odd_tags(&tags), ["1.26.05", "1.26.1234567890"]);
        // Never aliased: the policy sees neither, so 1.26.5 is the newest patch.
        assert_eq!(
            Policy::default().newest(v("1.26.1"), &tags),
            Some(("1.26.5", v("1.26.5")))
        );
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(v("1.26.10") > v("1.26.9"));
    }

    #[test]
    fn the_policy_picks_the_newest_allowed() {
        let tags: Vec<String> = [
            "1.26.1",
            "1.26.2",
            "1.26.10",
            "1.26.11-next",
            "1.27.0",
            "2.0.0",
            "latest",
            "1.26",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        let patch = Policy::default();
        let minor = Policy {
            allow_minor: true,
            ..Policy::default()
        };
        let major = Policy {
            allow_major: true,
            ..Policy::default()
        };
        assert_eq!(
            patch.newest(v("1.26.1"), &tags),
            Some(("1.26.10", v("1.26.10")))
        );
        assert_eq!(
            minor.newest(v("1.26.1"), &tags),
            Some(("1.27.0", v("1.27.0")))
        );
        assert_eq!(
            major.newest(v("1.26.1"), &tags),
            Some(("2.0.0", v("2.0.0")))
        );
        assert_eq!(patch.newest(v("1.26.10"), &tags), None);
    }

    #[test]
    fn refusals_name_the_flag() {
        let patch = Policy::default();
        assert!(patch
            .refusal(v("1.26.1"), v("1.27.0"))
            .unwrap()
            .contains("--allow-minor"));
        assert!(patch
            .refusal(v("1.26.1"), v("2.0.0"))
            .unwrap()
            .contains("--allow-major"));
        assert_eq!(patch.refusal(v("1.26.1"), v("1.26.5")), None);
    }

    #[test]
    fn downgrades_need_their_own_flag_and_are_named() {
        let patch = Policy::default();
        let minor = Policy {
            allow_minor: true,
            ..Policy::default()
        };
        assert_eq!(
            patch.refusal(v("1.26.1"), v("1.26.0")).unwrap(),
            "1.26.0 is a patch downgrade (an older version) from 1.26.1; pass --allow-downgrade"
        );
        assert_eq!(
            minor.refusal(v("1.26.1"), v("1.25.0")).unwrap(),
            "1.25.0 is a minor downgrade (an older version) from 1.26.1; pass --allow-downgrade"
        );
        assert_eq!(
            patch.refusal(v("1.26.1"), v("1.25.0")).unwrap(),
            "1.25.0 is a minor downgrade (an older version) from 1.26.1; pass --allow-downgrade --allow-minor"
        );
        let down = Policy {
            allow_downgrade: true,
            ..Policy::default()
        };
        assert_eq!(down.refusal(v("1.26.5"), v("1.26.2")), None);
    }
}
