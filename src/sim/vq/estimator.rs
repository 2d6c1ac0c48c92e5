//! How the decoder's gradient ∂L/∂q crosses the non-differentiable assignment to reach the
//! encoder output z (`quantizer.estimator`), and with IBQ the codes too.

mod ibq;
mod rotation;

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::sim::config::Estimator as Choice;

#[derive(Debug, Clone)]
pub(super) enum Estimator {
    /// Straight-through (Bengio et al. 2013; van den Oord et al. 2017): z + sg(q − z), so
    /// ∂L/∂z = ∂L/∂q.
    Ste,
    Rotation,
    Ibq(ibq::Ibq),
}

impl Estimator {
    /// The estimator for a codebook of `s` codes of dimension `m`.
    pub(super) fn new(choice: Choice, (s, m): (usize, usize)) -> Estimator {
        match choice {
            Choice::Ste => Estimator::Ste,
            Choice::Rotation => Estimator::Rotation,
            Choice::Ibq => Estimator::Ibq(ibq::Ibq::new(s, m)),
        }
    }

    /// Writes the reconstruction's gradient with respect to z into `g_z`, from `g_q`; an
    /// estimator that also moves the codes adds their gradient to `codebook`'s second half
    /// (None when the codes do not learn by gradient).
    pub(super) fn backward(
        &mut self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        assign: &[usize],
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
        codebook: (ArrayView2<f32>, Option<ArrayViewMut2<f32>>),
    ) {
        match self {
            Estimator::Ste => g_z.assign(&g_q),
            Estimator::Rotation => rotation::backward(z, q, g_q, g_z),
            Estimator::Ibq(ibq) => ibq.backward(z, assign, g_q, g_z, codebook),
        }
    }
}
