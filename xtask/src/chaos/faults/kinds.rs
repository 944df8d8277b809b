//! The kinds of fault and the set `--faults` names: parsed from `drops,fees,reorgs,stale`,
//! `all` or `none`, and written back the same way.

use std::fmt;

/// One kind of fault, as `--faults` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Drops,
    Fees,
    Reorgs,
    Stale,
}

impl Kind {
    pub(super) const ALL: [Kind; 4] = [Kind::Drops, Kind::Fees, Kind::Reorgs, Kind::Stale];

    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Drops => "drops",
            Kind::Fees => "fees",
            Kind::Reorgs => "reorgs",
            Kind::Stale => "stale",
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// The faults a drill injects (`--faults`); none by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(in crate::chaos) struct Faults([bool; 4]);

impl Faults {
    pub(in crate::chaos) const NONE: Faults = Faults([false; 4]);
    pub(in crate::chaos) const ALL: Faults = Faults([true; 4]);

    /// `drops,fees,reorgs,stale` (any of them, comma-separated, in any order), `all`, or
    /// `none`.
    pub(in crate::chaos) fn parse(list: &str) -> Result<Faults, String> {
        let names = || {
            Kind::ALL
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if list.trim() == "none" {
            return Ok(Faults::NONE);
        }
        let mut faults = Faults::NONE;
        for item in list.split(',').map(str::trim) {
            match item {
                "" => return Err(format!("an empty fault name in `{list}`")),
                "all" => faults = Faults::ALL,
                _ => match Kind::ALL.iter().find(|k| k.name() == item) {
                    Some(kind) => faults.0[kind.index()] = true,
                    None => {
                        return Err(format!(
                            "unknown fault `{item}` (faults: {}, all, none)",
                            names()
                        ));
                    }
                },
            }
        }
        Ok(faults)
    }

    pub(in crate::chaos) fn is_empty(self) -> bool {
        self == Faults::NONE
    }

    /// The enabled kinds, in [`Kind::ALL`]'s order.
    pub(super) fn kinds(self) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| self.0[k.index()])
            .collect()
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.kinds().into_iter().map(Kind::name).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_parse_and_bad_ones_are_refused() {
        assert_eq!(Faults::parse("all"), Ok(Faults::ALL));
        assert_eq!(Faults::parse("none"), Ok(Faults::NONE));
        assert_eq!(
            Faults::parse("drops,fees,reorgs,stale"),
            Ok(Faults::ALL),
            "every kind named is all"
        );
        let two = Faults::parse("stale, drops").expect("two kinds");
        assert_eq!(two.kinds(), [Kind::Drops, Kind::Stale]);
        assert_eq!(two.to_string(), "drops,stale");
        assert_eq!(
            Faults::parse("reorgs,reorgs").map(Faults::kinds),
            Ok(vec![Kind::Reorgs])
        );
        assert_eq!(Faults::parse("fees,all"), Ok(Faults::ALL));
        assert_eq!(Faults::NONE.to_string(), "none");
        assert_eq!(Faults::ALL.to_string(), "drops,fees,reorgs,stale");
        for bad in [
            "",
            "drop",
            "drops,",
            ",fees",
            "drops,,fees",
            "ALL",
            "none,drops",
            "x",
        ] {
            assert!(Faults::parse(bad).is_err(), "{bad:?}");
        }
    }
}
