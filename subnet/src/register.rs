//! Registration that spends nothing unseen: the burn and the coldkey's balance are shown, and
//! the operator confirms, before `--register` burns TAO ([`confirm`]).
//!
//! `--yes` skips the question (scripts), `--max-burn TAO` refuses a burn above a cap (with or
//! without `--yes`), and with no terminal to ask on and no `--yes` registration is refused: a
//! service that starts without a human never pays a price no one saw.

use std::io::{BufRead, Write};

use anyhow::{Result, bail};

/// Rao in one TAO.
pub const RAO_PER_TAO: u64 = 1_000_000_000;

/// Whether and how to register a hotkey that is not registered (`--register`, `--yes`,
/// `--max-burn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Registration {
    /// Register by burning if not registered (`--register`).
    pub register: bool,
    /// Do not ask (`--yes`).
    pub yes: bool,
    /// The highest burn accepted, in rao (`--max-burn`).
    pub max_burn: Option<u64>,
}

/// What registering costs, as read from chain just before asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The subnet.
    pub netuid: u16,
    /// The hotkey to register (SS58).
    pub hotkey: String,
    /// The paying coldkey (SS58).
    pub coldkey: String,
    /// The subnet's `Burn`, in rao.
    pub burn: u64,
    /// The coldkey's free balance, in rao.
    pub free: u64,
}

/// `rao` as TAO, every significant digit and no trailing zeros (`1.5`, `0.000000001`, `2`).
pub fn tao(rao: u64) -> String {
    let (whole, frac) = (rao / RAO_PER_TAO, rao % RAO_PER_TAO);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Parses an amount of TAO (`1`, `0.5`, `.25`, at most 9 decimals) into rao, exactly.
///
/// # Errors
/// Not a non-negative decimal, more than 9 decimals, or too large.
pub fn parse_tao(s: &str) -> Result<u64, String> {
    let bad = || format!("`{s}` is not an amount of TAO (e.g. 1.5, at most 9 decimals)");
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if (whole.is_empty() && frac.is_empty())
        || frac.len() > 9
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let frac: u64 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(RAO_PER_TAO)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)
}

/// Shows `offer` on `out` and decides whether to pay it under `policy`: refused above
/// `--max-burn` or beyond the balance; accepted at once with `--yes`; otherwise asked on
/// `input` when `interactive` (a terminal) — only `y` or `yes` accepts — and refused when not.
///
/// # Errors
/// The refusal, saying why and which flag changes it.
pub fn confirm(
    offer: &Offer,
    policy: &Registration,
    interactive: bool,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<()> {
    let burn = tao(offer.burn);
    writeln!(
        out,
        "registering hotkey {} on netuid {} burns {burn} TAO (the subnet's current Burn) from coldkey {}, whose free balance is {} TAO",
        offer.hotkey,
        offer.netuid,
        offer.coldkey,
        tao(offer.free)
    )?;
    if let Some(max) = policy.max_burn
        && offer.burn > max
    {
        bail!(
            "not registering: the burn, {burn} TAO, is above --max-burn {} TAO",
            tao(max)
        );
    }
    if offer.free < offer.burn {
        bail!(
            "not registering: coldkey {} holds {} TAO, less than the {burn} TAO burn",
            offer.coldkey,
            tao(offer.free)
        );
    }
    if policy.yes {
        writeln!(out, "--yes given: registering without asking")?;
        return Ok(());
    }
    if !interactive {
        bail!(
            "not registering: no terminal to confirm the {burn} TAO burn on; pass --yes to \
             register without asking (with --max-burn TAO to cap the price)"
        );
    }
    write!(out, "burn {burn} TAO to register? [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => bail!("not registering: the {burn} TAO burn was not confirmed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(burn: u64, free: u64) -> Offer {
        Offer {
            netuid: 9,
            hotkey: "5HOT".into(),
            coldkey: "5COLD".into(),
            burn,
            free,
        }
    }

    /// Runs [`confirm`] with `typed` as what the operator types; returns its verdict and what
    /// it printed.
    fn ask(
        burn: u64,
        policy: Registration,
        interactive: bool,
        typed: &str,
    ) -> (Result<()>, String) {
        let mut out = Vec::new();
        let verdict = confirm(
            &offer(burn, 10 * RAO_PER_TAO),
            &policy,
            interactive,
            &mut typed.as_bytes(),
            &mut out,
        );
        (verdict, String::from_utf8(out).unwrap())
    }

    const ASK: Registration = Registration {
        register: true,
        yes: false,
        max_burn: None,
    };

    #[test]
    fn the_price_and_balance_are_shown_and_only_yes_confirms() {
        let (ok, shown) = ask(RAO_PER_TAO / 2, ASK, true, "y\n");
        ok.unwrap();
        assert!(shown.contains("burns 0.5 TAO"), "{shown}");
        assert!(shown.contains("free balance is 10 TAO"), "{shown}");
        assert!(shown.contains("5HOT") && shown.contains("5COLD"), "{shown}");
        assert!(shown.ends_with("[y/N] "), "{shown}");
        ask(RAO_PER_TAO, ASK, true, " YES \n").0.unwrap();
        for declined in ["n\n", "\n", "", "yess\n", "sure\n"] {
            let err = ask(RAO_PER_TAO, ASK, true, declined).0.unwrap_err();
            assert!(
                err.to_string().contains("not confirmed"),
                "{declined:?}: {err}"
            );
        }
    }

    #[test]
    fn without_a_terminal_it_refuses_unless_yes() {
        let err = ask(RAO_PER_TAO, ASK, false, "y\n").0.unwrap_err();
        assert!(err.to_string().contains("--yes"), "{err}");
        let yes = Registration { yes: true, ..ASK };
        let (ok, shown) = ask(RAO_PER_TAO, yes, false, "");
        ok.unwrap();
        assert!(shown.contains("burns 1 TAO"), "{shown}");
        assert!(!shown.contains("[y/N]"), "{shown}");
    }

    #[test]
    fn a_burn_above_max_burn_is_refused_even_with_yes() {
        let capped = Registration {
            yes: true,
            max_burn: Some(RAO_PER_TAO),
            ..ASK
        };
        ask(RAO_PER_TAO, capped, false, "").0.unwrap();
        let err = ask(RAO_PER_TAO + 1, capped, true, "y\n").0.unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("--max-burn 1 TAO") && err.contains("1.000000001 TAO"),
            "{err}"
        );
    }

    #[test]
    fn a_burn_beyond_the_balance_is_refused_before_asking() {
        let mut out = Vec::new();
        let err = confirm(
            &offer(2 * RAO_PER_TAO, RAO_PER_TAO),
            &Registration { yes: true, ..ASK },
            true,
            &mut "y\n".as_bytes(),
            &mut out,
        )
        .unwrap_err();
        assert!(err.to_string().contains("holds 1 TAO"), "{err}");
    }

    #[test]
    fn tao_amounts_parse_and_print_exactly() {
        assert_eq!(parse_tao("1"), Ok(RAO_PER_TAO));
        assert_eq!(parse_tao("0.5"), Ok(RAO_PER_TAO / 2));
        assert_eq!(parse_tao(".25"), Ok(RAO_PER_TAO / 4));
        assert_eq!(parse_tao("2."), Ok(2 * RAO_PER_TAO));
        assert_eq!(parse_tao("0.000000001"), Ok(1));
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "0.0000000001",
            "1.2.3",
            "99999999999999999999",
        ] {
            assert!(parse_tao(bad).is_err(), "{bad}");
        }
        assert_eq!(tao(1_500_000_000), "1.5");
        assert_eq!(tao(1), "0.000000001");
        assert_eq!(tao(7 * RAO_PER_TAO), "7");
        assert_eq!(tao(0), "0");
    }
}
