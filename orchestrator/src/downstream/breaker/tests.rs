//! Tests of `breaker`, kept apart so the rules read on their own.

use super::*;
use proptest::prelude::*;

fn admitted(admission: Admission) -> Ticket {
    match admission {
        Admission::Admitted(ticket) => ticket,
        Admission::WaitUntil(at) => panic!("expected admission, told to wait until {at:?}"),
    }
}

#[test]
fn opens_after_consecutive_failures_and_recovers_through_one_probe() {
    let start = Instant::now();
    let mut b = Breaker::new(3, Duration::from_secs(5), Duration::from_secs(5));
    for _ in 0..2 {
        let t = admitted(b.admit(start));
        b.report(t, true, start);
    }
    assert!(!b.is_open(), "two failures are below the threshold");
    let t = admitted(b.admit(start));
    b.report(t, true, start);
    assert!(b.is_open());
    let reopen = start + Duration::from_secs(5);
    assert_eq!(
        b.admit(start + Duration::from_secs(1)),
        Admission::WaitUntil(reopen),
        "fails fast while open, and says until when"
    );
    let probe = admitted(b.admit(reopen));
    assert!(
        matches!(b.admit(reopen), Admission::WaitUntil(_)),
        "only one probe at a time"
    );
    b.report(probe, false, reopen);
    assert!(!b.is_open());
    admitted(b.admit(reopen));
}

#[test]
fn a_late_failure_does_not_push_the_reopen_time_out() {
    let start = Instant::now();
    let mut b = Breaker::new(1, Duration::from_secs(2), Duration::from_secs(2));
    let first = admitted(b.admit(start));
    let in_flight = admitted(b.admit(start));
    b.report(first, true, start);
    b.report(in_flight, true, start + Duration::from_secs(1));
    admitted(b.admit(start + Duration::from_secs(2)));
}

#[test]
fn each_failed_probe_doubles_the_open_time_up_to_the_max_and_closing_resets_it() {
    let start = Instant::now();
    let secs = Duration::from_secs;
    let mut b = Breaker::new(1, secs(1), secs(5));
    let t = admitted(b.admit(start));
    b.report(t, true, start);
    let mut now = start;
    let mut open_times = Vec::new();
    for _ in 0..5 {
        let Admission::WaitUntil(until) = b.admit(now) else {
            panic!("open");
        };
        open_times.push(until - now);
        now = until;
        let probe = admitted(b.admit(now));
        b.report(probe, true, now);
    }
    assert_eq!(open_times, [secs(1), secs(2), secs(4), secs(5), secs(5)]);
    let Admission::WaitUntil(until) = b.admit(now) else {
        panic!("open");
    };
    let probe = admitted(b.admit(until));
    b.report(probe, false, until);
    assert!(!b.is_open(), "the probe's success closes it");
    let t = admitted(b.admit(until));
    b.report(t, true, until);
    assert_eq!(
        b.admit(until),
        Admission::WaitUntil(until + secs(1)),
        "open for the base time again"
    );
}

#[test]
fn only_the_probe_answer_closes_or_reopens_a_half_open_breaker() {
    let start = Instant::now();
    let mut b = Breaker::new(1, Duration::from_secs(1), Duration::from_secs(1));
    let old = admitted(b.admit(start));
    let older = admitted(b.admit(start));
    b.report(old, true, start);
    let at = start + Duration::from_secs(1);
    let probe = admitted(b.admit(at));
    b.report(older, false, at);
    assert!(b.is_open(), "a late success is not the probe's");
    b.report(probe, true, at);
    assert!(matches!(b.admit(at), Admission::WaitUntil(_)));
}

#[test]
fn a_lost_probe_does_not_wedge_the_breaker() {
    let start = Instant::now();
    let mut b = Breaker::new(1, Duration::from_secs(1), Duration::from_secs(8));
    let t = admitted(b.admit(start));
    b.report(t, true, start);
    admitted(b.admit(start + Duration::from_secs(1)));
    // The probe's caller went away without reporting.
    admitted(b.admit(start + Duration::from_secs(2)));
}

#[derive(Debug, Clone)]
enum Event {
    /// Time passes, in milliseconds.
    Wait(u64),
    /// A call asks to go.
    Admit,
    /// The answer to the n-th admitted call still out (modulo how many are out).
    Answer { which: usize, transient: bool },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (0u64..1500).prop_map(Event::Wait),
        Just(Event::Admit),
        (any::<usize>(), any::<bool>())
            .prop_map(|(which, transient)| Event::Answer { which, transient }),
    ]
}

proptest! {
    /// Over any sequence of admissions, answers (late, early, lost) and waits:
    /// open means no admission before its time and a reopen time that never moves;
    /// half-open admits one probe per window; only answers to calls admitted in the
    /// current state change anything; the breaker opens only on the threshold-th
    /// consecutive current failure (for the base time) or a failed probe (for twice
    /// the last open time, at most the max), and closes only on the probe's success.
    #[test]
    fn the_state_machine_holds_its_rules(
        threshold in 1u32..4,
        events in proptest::collection::vec(event(), 1..200),
    ) {
        let open_for = Duration::from_secs(1);
        let open_max = Duration::from_secs(6);
        let start = Instant::now();
        let mut now = start;
        let mut b = Breaker::new(threshold, open_for, open_max);
        // The model: how long the breaker last opened for.
        let mut last_open = open_for;
        let mut out: Vec<Ticket> = Vec::new();
        let mut admitted_in_window = 0;
        for event in events {
            let before = (b.state, b.epoch);
            match event {
                Event::Wait(ms) => now += Duration::from_millis(ms),
                Event::Admit => match b.admit(now) {
                    Admission::Admitted(ticket) => {
                        if let State::Open { until } = before.0 {
                            prop_assert!(now >= until, "admitted while open");
                        }
                        if let State::HalfOpen { probe_until } = before.0 {
                            prop_assert!(now >= probe_until, "a second probe in one window");
                        }
                        if matches!(b.state, State::HalfOpen { .. }) {
                            if before.1 != b.epoch {
                                admitted_in_window = 0;
                            }
                            admitted_in_window += 1;
                            prop_assert_eq!(admitted_in_window, 1);
                        }
                        out.push(ticket);
                    }
                    Admission::WaitUntil(at) => {
                        prop_assert!(at > now);
                        prop_assert!(b.is_open());
                        prop_assert_eq!((b.state, b.epoch), before, "waiting changes nothing");
                    }
                },
                Event::Answer { which, transient } => {
                    if out.is_empty() {
                        continue;
                    }
                    let ticket = out.remove(which % out.len());
                    b.report(ticket, transient, now);
                    if ticket.epoch != before.1 {
                        prop_assert_eq!((b.state, b.epoch), before, "a stale answer counted");
                        continue;
                    }
                    match (before.0, transient, b.state) {
                        (State::Closed { failures }, true, State::Closed { failures: after }) => {
                            prop_assert_eq!(after, failures + 1);
                            prop_assert!(after < threshold);
                        }
                        (State::Closed { failures }, true, State::Open { until }) => {
                            prop_assert_eq!(failures + 1, threshold);
                            prop_assert_eq!(until, now + open_for);
                            last_open = open_for;
                        }
                        (State::HalfOpen { .. }, true, State::Open { until }) => {
                            let doubled = (last_open * 2).min(open_max);
                            prop_assert_eq!(until, now + doubled);
                            prop_assert!(doubled <= open_max);
                            last_open = doubled;
                        }
                        (State::Closed { .. } | State::HalfOpen { .. }, false, State::Closed { failures }) => {
                            prop_assert_eq!(failures, 0);
                        }
                        (from, transient, to) => {
                            prop_assert!(false, "{from:?} --{transient}--> {to:?}");
                        }
                    }
                }
            }
            if let (State::Open { until: was }, State::Open { until: is }) = (before.0, b.state) {
                prop_assert!(before.1 != b.epoch || was == is, "the reopen time moved");
            }
        }
    }
}
