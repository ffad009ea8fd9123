//! The conformance suite: one set of behaviour tests, run once per model.
//!
//! Each test calls the model's `run` directly (no CLI, no signals) with a plan
//! built from fixture targets, and checks a contract the README lists under
//! "Testing" (the conformance suite). The same
//! body runs for every model through the `conformance!` macro (ripgrep runs
//! its tests once per regex engine the same way), so a benchmark difference
//! between two models can only come from the concurrency model.
//!
//! Run one model's suite with `cargo nextest run -p pulse conformance::smol`.

mod limits;
mod native;
pub(crate) mod redirects;
mod spread;
mod suite;

/// Instantiate the whole suite for one model's `run`, in the calling module
/// (each model's file below is that one line).
macro_rules! conformance {
    ($run:path) => {
        use super::{limits, redirects, spread, suite};

        const RUN: suite::RunFn = $run;

        #[test]
        fn every_fixture_behaviour_gives_the_same_result_kind() {
            suite::fixture_behaviours(RUN);
        }

        #[test]
        fn certificate_expiry_is_reported_and_checked() {
            suite::certificate_expiry(RUN);
        }

        #[test]
        fn ip_limits_a_probe_to_one_address_family() {
            suite::address_families(RUN);
        }

        #[test]
        fn all_addresses_gives_every_address_its_verdict() {
            suite::every_address(RUN);
        }

        #[test]
        fn happy_eyeballs_connects_past_a_dead_address() {
            suite::happy_eyeballs(RUN);
        }

        #[test]
        fn spread_starts_are_not_early() {
            spread::starts_are_spread(RUN);
        }

        #[test]
        fn shutdown_cuts_a_spread_short() {
            spread::shutdown_cuts_the_spread_short(RUN);
        }

        #[test]
        fn a_drip_fed_body_cannot_extend_the_deadline() {
            suite::absolute_deadline(RUN);
        }

        #[test]
        fn one_result_per_target_in_input_order() {
            suite::one_result_per_target(RUN);
        }

        #[test]
        fn never_more_connections_than_workers() {
            suite::fan_out_bound(RUN);
        }

        #[test]
        fn a_panicking_probe_becomes_its_result() {
            suite::panic_isolation(RUN);
        }

        #[test]
        fn cancellation_accounts_for_every_target_and_leaves_no_thread() {
            suite::cancellation(RUN);
        }

        #[test]
        fn shutdown_before_start_cancels_everything() {
            suite::shutdown_before_start(RUN);
        }

        #[test]
        fn icmp_echo_on_loopback() {
            suite::icmp(RUN);
        }

        #[test]
        fn icmp_echo_train_counts_loss_and_duplicates() {
            suite::icmp_train(RUN);
        }

        #[test]
        fn hostile_servers_end_classified_within_the_deadline() {
            suite::hostile_servers(RUN);
        }

        #[test]
        fn hostile_icmp_replies_are_ignored_until_the_deadline() {
            suite::hostile_icmp(RUN);
        }

        #[test]
        fn serve_redirect_policy_refuses_unconfigured_hops() {
            redirects::serve_policy(RUN);
        }

        #[test]
        fn non_http_redirect_locations_are_protocol() {
            redirects::non_http_locations(RUN);
        }

        #[test]
        fn a_huge_timeout_is_a_deadline_that_never_comes() {
            limits::a_huge_timeout_is_a_deadline_that_never_comes(RUN);
        }

        #[test]
        fn a_huge_grace_period_saturates() {
            limits::a_huge_grace_period_saturates(RUN);
        }

        #[test]
        fn same_results_as_tokio_timings_aside() {
            suite::same_as_tokio(RUN);
        }
    };
}

// One file per model, each a single `conformance!(...)` line.
mod async_std;
mod rayon;
mod smol;
mod threads;
mod tokio;
