//! The way from an encoder output z (m) to the space the codes live in, and from a code back to
//! the decoder's input: an optional projection (`code_dim`) and an optional normalisation
//! (`distance = "cosine"`). With neither (the default) the lookup space is the latent space
//! and none of this runs. The codebook loss, the commitment loss, the estimator and the
//! regularisers all act in the lookup space, on the normalised vectors, as in lucidrains'
//! `VectorQuantize` (project_in → l2norm → codebook → straight-through → project_out).

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};
use rand::Rng;

use super::distance::{normalize_backward, normalize_rows};
use super::project::Project;
use crate::sim::config::{Distance, QuantizerConfig};

#[derive(Debug, Clone)]
pub(super) struct Lookup {
    cosine: bool,
    pub(super) project: Option<Project>,
    /// Lookup dimension c (code_dim, or m without projection).
    pub(super) c: usize,
    /// The codes the search sees, Ê (S, c): E l2-normalised (cosine only).
    table: Array2<f32>,
    /// The decoder's input per code, W_out·Ê + b_out (S, m) (projection only).
    decoded: Array2<f32>,
    // One batch, (n, c) row-major, grown to the largest batch: the projected inputs u, what
    // the search saw û (u normalised for cosine), the assigned codes ê, and the gradients
    // ∂L/∂ê (from the decoder) and ∂L/∂û.
    u: Vec<f32>,
    uh: Vec<f32>,
    eh: Vec<f32>,
    g_e: Vec<f32>,
    g_uh: Vec<f32>,
}

/// (û, ê, ∂L/∂ê, Ê) to read and ∂L/∂û to write, for the bottleneck's backward.
pub(super) type BackwardViews<'a> = (
    ArrayView2<'a, f32>,
    ArrayView2<'a, f32>,
    ArrayView2<'a, f32>,
    ArrayView2<'a, f32>,
    ArrayViewMut2<'a, f32>,
);

/// An (n, c) view of the first n·c entries of `buf`.
fn rows(buf: &[f32], c: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((buf.len() / c, c), buf).expect("buffer holds whole rows")
}

fn rows_mut(buf: &mut [f32], c: usize) -> ArrayViewMut2<'_, f32> {
    ArrayViewMut2::from_shape((buf.len() / c, c), buf).expect("buffer holds whole rows")
}

impl Lookup {
    /// The lookup of a codebook of `s` codes for latent dimension `m`; `rng` draws the
    /// projections (nothing is drawn without them).
    pub(super) fn new(
        cfg: &QuantizerConfig,
        s: usize,
        m: usize,
        lr: f32,
        rng: &mut impl Rng,
    ) -> Lookup {
        let cosine = cfg.distance == Distance::Cosine;
        let project = (cfg.code_dim > 0).then(|| Project::new(m, cfg.code_dim, lr, rng));
        let c = if cfg.code_dim > 0 { cfg.code_dim } else { m };
        Lookup {
            cosine,
            c,
            table: Array2::zeros(if cosine { (s, c) } else { (0, c) }),
            decoded: Array2::zeros(if project.is_some() { (s, m) } else { (0, m) }),
            project,
            u: Vec::new(),
            uh: Vec::new(),
            eh: Vec::new(),
            g_e: Vec::new(),
            g_uh: Vec::new(),
        }
    }

    #[cfg(test)]
    pub(super) fn cosine(&self) -> bool {
        self.cosine
    }

    /// True when the lookup space is the latent space, untouched.
    pub(super) fn is_identity(&self) -> bool {
        !self.cosine && self.project.is_none()
    }

    /// Recomputes what derives from the codes E (S, c) after they changed.
    pub(super) fn refresh(&mut self, codes: ArrayView2<f32>) {
        if self.cosine {
            self.table.assign(&codes);
            normalize_rows(self.table.view_mut());
        }
        if let Some(p) = &self.project {
            let table = if self.cosine {
                self.table.view()
            } else {
                codes.view()
            };
            p.output(table, self.decoded.view_mut());
        }
    }

    /// The codes the search sees, (S, c).
    pub(super) fn table<'a>(&'a self, codes: ArrayView2<'a, f32>) -> ArrayView2<'a, f32> {
        if self.cosine {
            self.table.view()
        } else {
            codes
        }
    }

    /// What the decoder receives for each code, (S, m).
    pub(super) fn decoded<'a>(&'a self, codes: ArrayView2<'a, f32>) -> ArrayView2<'a, f32> {
        if self.project.is_some() {
            self.decoded.view()
        } else {
            self.table(codes)
        }
    }

    /// The search's view of `z` (n, m), written into `out` (n, c): projected, normalised.
    pub(super) fn input(&self, z: ArrayView2<f32>, mut out: ArrayViewMut2<f32>) {
        match &self.project {
            Some(p) => p.input(z, out.view_mut()),
            None => out.assign(&z),
        }
        if self.cosine {
            normalize_rows(out);
        }
    }

    /// The lookup-space inputs of a whole data set, (N, c), for the codebook's init.
    pub(super) fn inputs(&self, z: ArrayView2<f32>) -> Array2<f32> {
        let mut u = Array2::zeros((z.nrows(), self.c));
        self.input(z, u.view_mut());
        u
    }

    /// Keeps one training batch: u, û and the assigned rows ê of the codes the search saw
    /// (`codes` are E).
    pub(super) fn forward(&mut self, z: ArrayView2<f32>, assign: &[usize], codes: ArrayView2<f32>) {
        let table = if self.cosine {
            self.table.view()
        } else {
            codes.view()
        };
        let len = z.nrows() * self.c;
        for buf in [
            &mut self.u,
            &mut self.uh,
            &mut self.eh,
            &mut self.g_e,
            &mut self.g_uh,
        ] {
            buf.resize(len, 0.0);
        }
        let c = self.c;
        match &self.project {
            Some(p) => p.input(z, rows_mut(&mut self.u, c)),
            None => rows_mut(&mut self.u, c).assign(&z),
        }
        self.uh.copy_from_slice(&self.u);
        if self.cosine {
            normalize_rows(rows_mut(&mut self.uh, c));
        }
        for (mut row, &k) in rows_mut(&mut self.eh, c).axis_iter_mut(Axis(0)).zip(assign) {
            row.assign(&table.row(k));
        }
    }

    /// The batch's inputs before normalisation, (n, c).
    pub(super) fn u(&self) -> ArrayView2<'_, f32> {
        rows(&self.u, self.c)
    }

    /// The batch's (û, ê), (n, c) each.
    pub(super) fn batch(&self) -> (ArrayView2<'_, f32>, ArrayView2<'_, f32>) {
        (rows(&self.uh, self.c), rows(&self.eh, self.c))
    }

    /// The batch for the bottleneck's backward: û, ê, ∂L/∂ê and the codes Ê the search saw
    /// (`codes` are E) to read, ∂L/∂û to write.
    pub(super) fn backward_views<'a>(
        &'a mut self,
        codes: ArrayView2<'a, f32>,
    ) -> BackwardViews<'a> {
        let c = self.c;
        let table = if self.cosine {
            self.table.view()
        } else {
            codes
        };
        (
            rows(&self.uh, c),
            rows(&self.eh, c),
            rows(&self.g_e, c),
            table,
            rows_mut(&mut self.g_uh, c),
        )
    }

    /// ∂L/∂ê into `g_e` from the decoder's ∂L/∂q (n, m); W_out's gradient is collected.
    pub(super) fn output_backward(&mut self, g_q: ArrayView2<f32>) {
        let c = self.c;
        match &mut self.project {
            Some(p) => {
                p.zero_grad();
                p.output_backward(rows(&self.eh, c), g_q, rows_mut(&mut self.g_e, c));
            }
            None => rows_mut(&mut self.g_e, c).assign(&g_q),
        }
    }

    /// ∂L/∂z (n, m) from ∂L/∂û in `g_uh`, through the normalisation and W_in (whose gradient
    /// is collected).
    pub(super) fn input_backward(&mut self, z: ArrayView2<f32>, mut g_z: ArrayViewMut2<f32>) {
        let c = self.c;
        let mut g_u = rows_mut(&mut self.g_uh, c);
        if self.cosine {
            for (u, g) in rows(&self.u, c).outer_iter().zip(g_u.outer_iter_mut()) {
                normalize_backward(u, g);
            }
        }
        match &mut self.project {
            Some(p) => p.input_backward(z, g_u.view(), g_z),
            None => g_z.assign(&g_u),
        }
    }

    /// ∂L/∂Ê (S, c) turned into ∂L/∂E in place, through the codes' normalisation.
    pub(super) fn table_backward(&self, codes: ArrayView2<f32>, mut grad: ArrayViewMut2<f32>) {
        if self.cosine {
            for (e, g) in codes.outer_iter().zip(grad.outer_iter_mut()) {
                normalize_backward(e, g);
            }
        }
    }

    /// One Adam step of the projections.
    pub(super) fn step(&mut self) {
        if let Some(p) = &mut self.project {
            p.step();
        }
    }

    pub(super) fn all_finite(&self) -> bool {
        self.project.as_ref().is_none_or(Project::all_finite)
    }
}
