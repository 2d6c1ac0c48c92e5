//! Adam (Kingma & Ba), matching torch.optim.Adam: bias-corrected, no weight decay.

/// State slot i (m[i], v[i]) belongs to the i-th (param, grad) pair handed to `step`, so the
/// caller must pass the pairs in the same order every step.
#[derive(Debug, Clone)]
pub struct Adam {
    /// First-moment estimates, one vector per parameter tensor.
    pub m: Vec<Vec<f32>>,
    /// Second-moment estimates.
    pub v: Vec<Vec<f32>>,
    /// Steps taken so far.
    pub t: u32,
    pub lr: f32,
    /// β's are f64 like torch's Python floats, so 1 − β is 0.001 and not f32's 0.00099998.
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f32,
}

impl Adam {
    /// torch defaults: β = (0.9, 0.999), ε = 1e-8.
    pub fn new(lr: f32) -> Self {
        Self {
            m: Vec::new(),
            v: Vec::new(),
            t: 0,
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// One step over the given (param, grad) slices. State is created lazily on the first step.
    pub fn step<'a>(&mut self, params: impl Iterator<Item = (&'a mut [f32], &'a [f32])>) {
        self.t += 1;
        // Bias corrections in f64 as torch does (Python floats), then used in f32.
        let t = self.t as i32;
        let bc1 = 1.0 - self.beta1.powi(t);
        let bc2_sqrt = (1.0 - self.beta2.powi(t)).sqrt();
        let step_size = (f64::from(self.lr) / bc1) as f32;
        let bc2_sqrt = bc2_sqrt as f32;
        let (b1, b2, eps) = (self.beta1 as f32, self.beta2 as f32, self.eps);
        let (one_m_b1, one_m_b2) = ((1.0 - self.beta1) as f32, (1.0 - self.beta2) as f32);

        for (i, (p, g)) in params.enumerate() {
            assert_eq!(
                p.len(),
                g.len(),
                "adam: parameter {i} and its gradient differ in length"
            );
            if i == self.m.len() {
                self.m.push(vec![0.0; p.len()]);
                self.v.push(vec![0.0; p.len()]);
            }
            let (m, v) = (&mut self.m[i], &mut self.v[i]);
            assert_eq!(
                m.len(),
                p.len(),
                "adam: parameter {i} changed length between steps"
            );
            // Equal-length reslices let the compiler drop bounds checks and vectorise.
            let n = p.len();
            let (g, m, v) = (&g[..n], &mut m[..n], &mut v[..n]);
            for j in 0..n {
                m[j] = flush_subnormal(b1 * m[j] + one_m_b1 * g[j]);
                v[j] = flush_subnormal(b2 * v[j] + one_m_b2 * g[j] * g[j]);
                p[j] -= step_size * m[j] / (v[j].sqrt() / bc2_sqrt + eps);
            }
        }
    }
}

/// Zero for subnormal inputs. A dead unit's zero gradient decays m by 0.9 per step into the
/// subnormal range within a few hundred steps, and subnormal arithmetic is many times slower on
/// x86; the dropped values move a parameter by < 1e-30.
#[inline]
fn flush_subnormal(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        x
    }
}
