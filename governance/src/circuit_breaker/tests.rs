//! Unit tests of the breaker's parts: the packed word, the window ring, probe leases,
//! open-duration timing, and the breaker's size.

use super::probes::ProbeSlots;
use super::state::{CircuitState, MAX_TRIPS, Word};
use super::timing::Timing;
use super::window::{MAX_BUCKET_COUNT, Window};
use super::*;

#[test]
fn breaker_fits_in_160_bytes() {
    let size = std::mem::size_of::<CircuitBreaker>();
    println!("size_of::<CircuitBreaker>() = {size} bytes");
    assert!(size <= 160, "CircuitBreaker is {size} bytes");
}

mod word {
    use super::*;

    #[test]
    fn fields_round_trip_and_do_not_overlap() {
        let w = Word::INITIAL.trip().half_open().add_probe().add_success();
        assert_eq!(w.state(), CircuitState::HalfOpen);
        assert!(!w.forced());
        assert_eq!(w.in_flight(), 2);
        assert_eq!(w.successes(), 1);
        assert_eq!(w.trips(), 1);
        assert_eq!(w.generation(), 2);
        let back = w.remove_probe();
        assert_eq!(
            (back.in_flight(), back.successes(), back.generation()),
            (1, 1, 2)
        );
    }

    #[test]
    fn every_transition_bumps_the_generation_and_clears_counters() {
        let w = Word::INITIAL.trip().half_open().add_success();
        let forced = w.transition(CircuitState::Open, true, 7);
        assert_eq!(forced.generation(), w.generation() + 1);
        assert_eq!(
            (forced.state(), forced.forced(), forced.trips()),
            (CircuitState::Open, true, 7)
        );
        assert_eq!((forced.in_flight(), forced.successes()), (0, 0));
        assert_eq!(w.close().trips(), 0, "closing resets backoff");
    }

    #[test]
    fn trips_saturate_and_generations_wrap_inside_their_field() {
        let mut w = Word::INITIAL;
        for _ in 0..100 {
            w = w.trip();
        }
        assert_eq!(w.trips(), MAX_TRIPS);
        assert_eq!(w.state(), CircuitState::Open);
        let last = Word::from_bits(!0b111); // closed, not forced, every counter and the generation at max
        let next = last.trip();
        assert_eq!(
            next.generation(),
            0,
            "wraps to 0 without touching other fields"
        );
        assert_eq!(next.state(), CircuitState::Open);
    }

    #[test]
    fn removing_a_probe_saturates_at_zero() {
        assert_eq!(Word::INITIAL.remove_probe(), Word::INITIAL);
    }
}

mod window {
    use super::*;

    #[test]
    fn counts_the_current_slot_and_the_ten_before() {
        let w = Window::new();
        w.record(1, 100);
        assert_eq!(w.sum(1, 100), 1);
        assert_eq!(w.sum(1, 110), 1, "ten slots later it still counts");
        assert_eq!(w.sum(1, 111), 0, "eleven slots later it is gone");
    }

    #[test]
    fn a_reused_bucket_starts_from_zero() {
        let w = Window::new();
        w.record(1, 5);
        w.record(1, 5);
        w.record(1, 16); // same ring position, next lap
        assert_eq!(w.sum(1, 16), 1);
    }

    #[test]
    fn other_generations_read_as_empty() {
        let w = Window::new();
        w.record(1, 5);
        assert_eq!(w.sum(2, 5), 0, "a transition clears the window");
    }

    #[test]
    fn a_straggler_never_overwrites_a_newer_bucket() {
        let w = Window::new();
        w.record(3, 5);
        w.record(2, 5); // an older generation, same slot
        assert_eq!(w.sum(3, 5), 1);
        w.record(3, 16);
        w.record(3, 5); // same generation, an older lap at the same position
        assert_eq!(w.sum(3, 16), 1);
    }

    #[test]
    fn a_long_idle_bucket_is_old_not_newer() {
        // A bucket last written 2^15 + 1 laps ago (10 hours with a 1 s window) must be
        // reset by a new event, not taken for a newer bucket.
        let w = Window::new();
        w.record(1, 0);
        let later = (32_769 * 11) as u64;
        w.record(1, later);
        assert_eq!(w.sum(1, later), 1);
        // Likewise a bucket of a generation far behind.
        let w = Window::new();
        w.record(200, 5);
        w.record(1_000, 5);
        assert_eq!(w.sum(1_000, 5), 1);
    }

    #[test]
    fn early_slots_do_not_underflow() {
        let w = Window::new();
        w.record(0, 0);
        assert_eq!(w.sum(0, 0), 1);
        assert_eq!(w.sum(0, 3), 1);
    }

    #[test]
    fn bucket_limit_matches_config_limit() {
        assert_eq!(MAX_BUCKET_COUNT, u64::from(u32::MAX));
    }
}

mod probes {
    use super::*;

    #[test]
    fn claims_release_and_reuse() {
        let slots = ProbeSlots::new(2);
        let a = slots.claim_free(1, 10).expect("free");
        let b = slots.claim_free(1, 10).expect("free");
        assert_ne!(a.slot, b.slot);
        assert!(slots.claim_free(1, 10).is_none(), "both taken");
        assert!(slots.release(1, a));
        assert!(!slots.release(1, a), "a lease releases once");
        let c = slots.claim_free(1, 10).expect("free again");
        assert_eq!(c.slot, a.slot);
        assert_ne!(
            c.ticket, a.ticket,
            "a new holder of the slot gets a new ticket"
        );
        assert!(!slots.release(1, a), "so the old lease cannot free it");
    }

    #[test]
    fn leases_of_an_earlier_generation_are_free() {
        let slots = ProbeSlots::new(1);
        let old = slots.claim_free(1, 0).expect("free");
        assert!(
            slots.claim_free(2, 0).is_some(),
            "a transition freed the slot"
        );
        assert!(!slots.release(1, old), "the old lease lost its slot");
    }

    #[test]
    fn a_straggler_never_overwrites_a_newer_lease() {
        let slots = ProbeSlots::new(1);
        let live = slots.claim_free(5, 0).expect("free");
        assert!(slots.claim_free(4, 0).is_none());
        assert!(slots.release(5, live));
    }

    #[test]
    fn expired_leases_can_be_taken_over_once() {
        let slots = ProbeSlots::new(1);
        let lost = slots.claim_free(1, 1_000).expect("free");
        assert!(
            slots.take_over_expired(1, 30_999, 30_000).is_none(),
            "not yet"
        );
        let new = slots.take_over_expired(1, 31_000, 30_000).expect("expired");
        assert!(!slots.release(1, lost), "the lost probe frees nothing");
        assert!(
            slots.take_over_expired(1, 31_000, 30_000).is_none(),
            "the new lease is fresh"
        );
        assert!(slots.release(1, new));
    }

    #[test]
    fn a_straggling_claimer_cannot_make_a_live_probe_look_old() {
        let slots = ProbeSlots::new(1);
        // A claimer read the slot free and the clock at 1 s, then stalled; meanwhile a
        // live probe claimed the slot at 50 s. The straggler's CAS fails, but it wrote
        // its admission time first: `fetch_max` keeps the live probe's.
        let live = slots.claim_free(1, 50_000).expect("free");
        assert!(
            slots.claim(0, 0, 1, 1_000).is_none(),
            "the straggler's CAS fails"
        );
        assert!(
            slots.take_over_expired(1, 60_000, 30_000).is_none(),
            "admitted at 50 s, not 1 s"
        );
        assert!(
            slots.take_over_expired(1, 80_000, 30_000).is_some(),
            "and expires 30 s after that"
        );
        assert!(!slots.release(1, live));
    }

    #[test]
    fn release_oldest_picks_the_oldest_of_the_generation() {
        let slots = ProbeSlots::new(3);
        let young = slots.claim_free(1, 50).expect("free");
        let old = slots.claim_free(1, 10).expect("free");
        assert!(slots.release_oldest(1));
        assert!(!slots.release(1, old));
        assert!(slots.release(1, young));
        assert!(!slots.release_oldest(1));
    }
}

mod open_period {
    use std::time::Duration;

    use super::*;

    /// A transitioner delayed between its CAS and its publication must not overwrite
    /// the deadline of a later open period (which would shut it for good).
    #[test]
    fn a_late_publication_never_overwrites_a_later_period() {
        let clock = ManualClock::new();
        let breaker = CircuitBreaker::with_clock(CircuitBreakerConfig::default(), clock.clone());
        let old = breaker.load().trip(); // the delayed transitioner's word (generation 1)
        breaker.force_open();
        breaker.reset();
        for _ in 0..5 {
            breaker.try_acquire().expect("closed").failure();
        }
        let current = breaker.load();
        assert_eq!(current.state(), CircuitState::Open);
        breaker.publish_open(old, 0); // lands now, late
        assert_eq!(
            breaker.open_remaining(),
            Some(Duration::from_secs(60)),
            "the later deadline stands"
        );
        clock.advance(Duration::from_secs(60));
        assert!(breaker.try_acquire().is_ok(), "and it half-opens on time");
    }
}

mod permit {
    use super::super::permit::PermitKind;
    use super::super::probes::Lease;
    use super::state::GENERATION_MASK;

    #[test]
    fn tokens_round_trip() {
        let kinds = [
            PermitKind::Closed { count_calls: false },
            PermitKind::Closed { count_calls: true },
            PermitKind::Stale,
            PermitKind::Probe(Lease { slot: 0, ticket: 0 }),
            PermitKind::Probe(Lease {
                slot: 1022,
                ticket: (1 << 17) - 1,
            }),
        ];
        for generation in [0, 1, 12_345, GENERATION_MASK] {
            for kind in kinds {
                assert_eq!(
                    PermitKind::decode(kind.encode(generation)),
                    (generation, kind)
                );
            }
        }
    }
}

mod timing {
    use super::*;

    #[test]
    fn fixed_by_default() {
        let timing = Timing::new(&CircuitBreakerConfig::default());
        for trips in [0, 1, 2, 63] {
            assert_eq!(timing.open_ms(trips, trips * 7), 60_000);
        }
    }

    #[test]
    fn backoff_multiplies_then_caps() {
        let config = CircuitBreakerConfig {
            timeout_secs: 10,
            backoff_multiplier: 2.0,
            backoff_max_secs: 50,
            ..Default::default()
        };
        let timing = Timing::new(&config);
        let got: Vec<_> = (1..=5).map(|t| timing.open_ms(t, 0)).collect();
        assert_eq!(got, vec![10_000, 20_000, 40_000, 50_000, 50_000]);
    }

    #[test]
    fn a_cap_below_the_timeout_never_shortens_it() {
        let config = CircuitBreakerConfig {
            timeout_secs: 100,
            backoff_max_secs: 5,
            ..Default::default()
        };
        assert_eq!(Timing::new(&config).open_ms(1, 0), 100_000);
    }

    #[test]
    fn jitter_adds_at_most_its_fraction() {
        let config = CircuitBreakerConfig {
            backoff_jitter: 0.25,
            ..Default::default()
        };
        let timing = Timing::new(&config);
        for generation in 0..1_000 {
            let ms = timing.open_ms(1, generation);
            assert!((60_000..=75_000).contains(&ms), "{ms}");
        }
    }

    #[test]
    fn rate_needs_the_minimum_calls() {
        let config = CircuitBreakerConfig {
            failure_rate: Some(FailureRatePolicy {
                threshold: 0.5,
                minimum_calls: 4,
            }),
            ..Default::default()
        };
        let timing = Timing::new(&config);
        assert!(!timing.rate_trips(3, 3));
        assert!(timing.rate_trips(2, 4));
        assert!(!timing.rate_trips(1, 4));
    }
}
