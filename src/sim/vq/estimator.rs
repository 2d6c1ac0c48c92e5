//! How the decoder's gradient ∂L/∂q crosses the non-differentiable assignment to reach the
//! encoder output z (`quantizer.estimator`).

mod rotation;

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::sim::config::Estimator as Choice;

#[derive(Debug, Clone, Copy)]
pub(super) enum Estimator {
    /// Straight-through (Bengio et al. 2013; van den Oord et al. 2017): z + sg(q − z), so
    /// ∂L/∂z = ∂L/∂q.
    Ste,
    Rotation,
}

impl Estimator {
    pub(super) fn new(choice: Choice) -> Estimator {
        match choice {
            Choice::Ste => Estimator::Ste,
            Choice::Rotation => Estimator::Rotation,
        }
    }

    /// Writes the reconstruction's gradient with respect to z into `g_z`, from `g_q`.
    pub(super) fn backward(
        self,
        z: ArrayView2<f32>,
        q: ArrayView2<f32>,
        g_q: ArrayView2<f32>,
        mut g_z: ArrayViewMut2<f32>,
    ) {
        match self {
            Estimator::Ste => g_z.assign(&g_q),
            Estimator::Rotation => rotation::backward(z, q, g_q, g_z),
        }
    }
}
