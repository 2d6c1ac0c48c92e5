//! Multilayer perceptron: `depth` hidden layers of `width` units with an activation, then a
//! linear output layer. Depth 0 is a single linear map; `Mlp::identity` has no layer at all.

use ndarray::{s, Array2, ArrayView2, ArrayViewMut2};
use rand::Rng;
use rayon::prelude::*;

use super::activation;
use super::linear::Linear;
use crate::sim::config::Activation;

/// Rows per piece of `infer`.
const INFER_CHUNK: usize = 256;

/// Training caches are preallocated for `max_batch` rows so forward/backward never allocate;
/// a batch of n rows uses the first n rows of each buffer.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// depth + 1 layers; the last one is the linear output layer. Empty for the identity.
    layers: Vec<Linear>,
    /// Input (= output) width of the identity; unused otherwise.
    dim: usize,
    act: Activation,
    max_batch: usize,
    /// Pre-activation of each hidden layer, (max_batch, width).
    pre: Vec<Array2<f32>>,
    /// Activation output of each hidden layer, (max_batch, width).
    post: Vec<Array2<f32>>,
    /// Network output, (max_batch, d_out).
    out: Array2<f32>,
    /// Ping-pong buffers for dL/d(hidden), (max_batch, width); two suffice for any depth.
    grad: [Array2<f32>; 2],
    /// Rows of the last training forward, so backward can check it pairs with it.
    n: usize,
}

impl Mlp {
    pub fn new(
        d_in: usize,
        width: usize,
        depth: usize,
        d_out: usize,
        act: Activation,
        max_batch: usize,
        rng: &mut impl Rng,
    ) -> Self {
        let mut layers = Vec::with_capacity(depth + 1);
        let mut fan_in = d_in;
        for _ in 0..depth {
            layers.push(Linear::new(fan_in, width, rng));
            fan_in = width;
        }
        layers.push(Linear::new(fan_in, d_out, rng));
        let hidden = || Array2::zeros((max_batch, width));
        let grad_rows = if depth > 0 { max_batch } else { 0 };
        Self {
            layers,
            dim: d_in,
            act,
            max_batch,
            pre: (0..depth).map(|_| hidden()).collect(),
            post: (0..depth).map(|_| hidden()).collect(),
            out: Array2::zeros((max_batch, d_out)),
            grad: [
                Array2::zeros((grad_rows, width)),
                Array2::zeros((grad_rows, width)),
            ],
            n: 0,
        }
    }

    /// The identity map on `dim` columns (`model.kind = "identity"`): no parameters, forward
    /// copies its input, backward passes the gradient through.
    pub fn identity(dim: usize, max_batch: usize) -> Self {
        Self {
            layers: Vec::new(),
            dim,
            act: crate::sim::config::Activation::Relu,
            max_batch,
            pre: Vec::new(),
            post: Vec::new(),
            out: Array2::zeros((max_batch, dim)),
            grad: [Array2::zeros((0, 0)), Array2::zeros((0, 0))],
            n: 0,
        }
    }

    /// A copy for `infer` only: the layers, with no room for a training batch (`max_batch`
    /// 0), so that copying a network costs about its weights.
    pub fn for_inference(&self) -> Self {
        let no_rows = |a: &Array2<f32>| Array2::zeros((0, a.ncols()));
        Self {
            layers: self.layers.clone(),
            dim: self.dim,
            act: self.act,
            max_batch: 0,
            pre: self.pre.iter().map(no_rows).collect(),
            post: self.post.iter().map(no_rows).collect(),
            out: no_rows(&self.out),
            grad: self.grad.each_ref().map(no_rows),
            n: 0,
        }
    }

    pub fn d_in(&self) -> usize {
        self.layers.first().map_or(self.dim, Linear::fan_in)
    }

    pub fn d_out(&self) -> usize {
        self.layers.last().map_or(self.dim, Linear::fan_out)
    }

    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Hidden layers first, output layer last.
    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }

    /// Training forward on n ≤ max_batch rows, (n, d_in) -> (n, d_out); caches what backward needs.
    pub fn forward(&mut self, x: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        let n = x.nrows();
        assert!(
            n <= self.max_batch,
            "batch of {n} rows exceeds max_batch {}",
            self.max_batch
        );
        assert_eq!(x.ncols(), self.d_in(), "input width differs from d_in");
        self.n = n;
        if self.layers.is_empty() {
            self.out.slice_mut(s![..n, ..]).assign(&x);
            return self.out.slice(s![..n, ..]);
        }
        let depth = self.pre.len();
        for i in 0..depth {
            let (done, rest) = self.post.split_at_mut(i);
            let input = if i == 0 {
                x.view()
            } else {
                done[i - 1].slice(s![..n, ..])
            };
            self.layers[i].forward(input, self.pre[i].slice_mut(s![..n, ..]));
            activation::forward(
                self.act,
                self.pre[i].slice(s![..n, ..]),
                rest[0].slice_mut(s![..n, ..]),
            );
        }
        let input = if depth == 0 {
            x.view()
        } else {
            self.post[depth - 1].slice(s![..n, ..])
        };
        self.layers[depth].forward(input, self.out.slice_mut(s![..n, ..]));
        self.out.slice(s![..n, ..])
    }

    /// Backward of the last `forward` (same `x`): accumulates parameter gradients and writes
    /// dL/dx into `grad_in` if given. With `None` the input layer's gx product is skipped.
    pub fn backward(
        &mut self,
        x: ArrayView2<f32>,
        grad_out: ArrayView2<f32>,
        grad_in: Option<ArrayViewMut2<f32>>,
    ) {
        let n = x.nrows();
        assert_eq!(
            n, self.n,
            "backward must follow a forward on the same batch"
        );
        assert_eq!(
            grad_out.dim(),
            (n, self.d_out()),
            "grad_out shape differs from (n, d_out)"
        );
        let depth = self.pre.len();
        if self.layers.is_empty() {
            if let Some(mut g) = grad_in {
                g.assign(&grad_out);
            }
            return;
        }
        if depth == 0 {
            self.layers[0].backward(x, grad_out, grad_in);
            return;
        }
        let [ga, gb] = &mut self.grad;
        let (mut cur, mut next) = (ga, gb);
        // cur = dL/d(post of the last hidden layer)
        self.layers[depth].backward(
            self.post[depth - 1].slice(s![..n, ..]),
            grad_out,
            Some(cur.slice_mut(s![..n, ..])),
        );
        let mut grad_in = grad_in;
        for i in (0..depth).rev() {
            // cur becomes dL/d(pre of layer i)
            activation::backward(
                self.act,
                self.pre[i].slice(s![..n, ..]),
                self.post[i].slice(s![..n, ..]),
                cur.slice_mut(s![..n, ..]),
            );
            if i == 0 {
                self.layers[0].backward(x, cur.slice(s![..n, ..]), grad_in.take());
            } else {
                self.layers[i].backward(
                    self.post[i - 1].slice(s![..n, ..]),
                    cur.slice(s![..n, ..]),
                    Some(next.slice_mut(s![..n, ..])),
                );
                std::mem::swap(&mut cur, &mut next);
            }
        }
    }

    /// Inference on any number of rows, (n, d_in) -> (n, d_out); leaves the training caches
    /// alone. Runs `INFER_CHUNK` rows at a time so the hidden activations stay cache sized
    /// whatever n is; rows are independent, so the result is the same as in one piece. The
    /// pieces go to rayon's threads (idle ones steal them; the pieces, and so the result, are
    /// the same whatever the thread count).
    pub fn infer(&self, x: ArrayView2<f32>) -> Array2<f32> {
        assert_eq!(x.ncols(), self.d_in(), "input width differs from d_in");
        if self.layers.is_empty() {
            return x.to_owned();
        }
        let (n, d_out) = (x.nrows(), self.d_out());
        let mut out = Array2::zeros((n, d_out));
        let width = self.layers[0].fan_out();
        let rows = n.min(INFER_CHUNK);
        let depth = self.layers.len() - 1;
        out.as_slice_mut()
            .expect("standard layout")
            .par_chunks_mut((INFER_CHUNK * d_out).max(1))
            .enumerate()
            .for_each_init(
                // Ping-pong hidden buffers, (rows, width) each.
                || [Array2::zeros((rows, width)), Array2::zeros((rows, width))],
                |h, (c, piece)| {
                    let start = c * INFER_CHUNK;
                    let end = (start + INFER_CHUNK).min(n);
                    let mut piece = ArrayViewMut2::from_shape((end - start, d_out), piece)
                        .expect("rows of the output");
                    let [ha, hb] = h;
                    let (mut cur, mut next) = (ha, hb);
                    for (i, layer) in self.layers.iter().enumerate() {
                        let input = if i == 0 {
                            x.slice(s![start..end, ..])
                        } else {
                            cur.slice(s![..end - start, ..])
                        };
                        if i == depth {
                            layer.forward(input, piece.view_mut());
                        } else {
                            let mut pre = next.slice_mut(s![..end - start, ..]);
                            layer.forward(input, pre.view_mut());
                            activation::apply(self.act, pre);
                            std::mem::swap(&mut cur, &mut next);
                        }
                    }
                },
            );
        out
    }

    pub fn zero_grad(&mut self) {
        self.layers.iter_mut().for_each(Linear::zero_grad);
    }

    /// Every parameter finite (divergence check).
    pub fn all_finite(&self) -> bool {
        self.layers
            .iter()
            .all(|l| l.w.iter().chain(&l.b).all(|v| v.is_finite()))
    }

    /// (parameter, gradient) pairs as flat slices: per layer W then b, input layer first.
    pub fn params_mut(&mut self) -> impl Iterator<Item = (&mut [f32], &[f32])> {
        self.layers.iter_mut().flat_map(|l| {
            let Linear { w, b, gw, gb, .. } = l;
            [
                (
                    w.as_slice_mut().expect("standard layout"),
                    gw.as_slice().expect("standard layout"),
                ),
                (
                    b.as_slice_mut().expect("standard layout"),
                    gb.as_slice().expect("standard layout"),
                ),
            ]
        })
    }
}
