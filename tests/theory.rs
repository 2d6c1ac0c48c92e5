//! The §4.2 formula: with identity maps, H and Q measured on tokens placed on M of K modes
//! match their predictions (H = ln M; Q from the mixture's geometry) at every M.

use vqsim::sim::theory::{theory, TheoryConfig};

#[test]
fn measured_h_and_q_match_the_predictions() {
    let rows = theory(&TheoryConfig::default()).unwrap();
    assert_eq!(rows.len(), 10);
    for r in &rows {
        println!("{r:?}");
    }
    for r in &rows {
        // S = 64 does not split evenly over 3, 6, 7, 9 modes: H falls short of ln M by < 0.01.
        assert!(
            (r.h_measured - r.h_predicted).abs() < 0.01,
            "M = {}: H {} vs ln M {}",
            r.active_modes,
            r.h_measured,
            r.h_predicted
        );
        let rel = (r.q_measured - r.q_predicted).abs() / r.q_predicted;
        assert!(
            rel < 0.02,
            "M = {}: Q {} vs predicted {} ({:.1}% off)",
            r.active_modes,
            r.q_measured,
            r.q_predicted,
            100.0 * rel
        );
    }
    // The paper's point: Q rises as modes lose their tokens.
    assert!(rows.windows(2).all(|w| w[0].q_measured > w[1].q_measured));
}
