//! Dense f32 matrix products for the layers: C = A·B or C += A·B, allocation-free.
//!
//! ndarray's `general_mat_mul` (matrixmultiply) allocates and packs both operands on every
//! call and runs an 8×8 AVX2 kernel: it pads the 2-wide products of a 2-d latent layer to 8 and
//! leaves half of an AVX-512 core idle. At this model's sizes (batch 256, width 64) products were
//! 90% of a training step. The kernels here read the operands in place: a tile of C keeps R rows
//! × NB columns of accumulators in registers while p runs, broadcasting elements of A against
//! rows of B.
//!
//! Numerics: every entry of C is the multiply-add chain acc ← a_ip·b_pj + acc over p, from 0, in
//! blocks of `KC` terms, each block's acc then added to C. With FMA hardware the multiply-adds
//! are fused; that is what matrixmultiply's FMA kernels compute, so both give the same bits
//! (tested), and training results did not change when the layers moved here. Without AVX2+FMA
//! (or off x86-64) a portable scalar loop runs the same chain unfused, as matrixmultiply's
//! non-FMA kernels do.

use ndarray::{ArrayView2, ArrayViewMut2};

/// matrixmultiply's sgemm k-block (its `KC`): partial sums go into C every `KC` terms of p.
pub const KC: usize = 256;

/// C = A·B (`accumulate` false) or C += A·B (true); A is (m, k), B (k, n), C (m, n).
pub fn gemm(a: ArrayView2<f32>, b: ArrayView2<f32>, accumulate: bool, mut c: ArrayViewMut2<f32>) {
    let ((m, k), n) = (a.dim(), b.ncols());
    assert_eq!(
        b.nrows(),
        k,
        "gemm: A has {k} columns, B has {} rows",
        b.nrows()
    );
    assert_eq!(c.dim(), (m, n), "gemm: C is not (rows of A, columns of B)");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    // The tiles stream rows of B', best with unit column stride: C = A·B as it is, or
    // Cᵀ = Bᵀ·Aᵀ. Prefer the one with more columns per row of B' (wider vectors).
    let normal = unit_cols(&b);
    let transposed = unit_cols(&a.t());
    let use_t = transposed && (!normal || m > n);
    // Views are invariant in their lifetime: reborrow both to a common one.
    let (a, b) = (a.reborrow(), b.reborrow());
    let (a, b) = if use_t {
        (b.reversed_axes(), a.reversed_axes())
    } else {
        (a, b)
    };
    let mut c = if use_t { c.reversed_axes() } else { c };
    let job = Job {
        m: a.nrows(),
        k: a.ncols(),
        n: b.ncols(),
        a: Raw::of(a.as_ptr(), a.strides()),
        b: Raw::of(b.as_ptr(), b.strides()),
        c: Raw::of(c.as_mut_ptr(), c.strides()),
        accumulate,
    };
    // SAFETY: the views are valid for their shapes and strides (the job's dimensions), and C is
    // borrowed mutably, so it overlaps neither A nor B.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = x86::Simd::detect() {
            return x86::run(simd, job, normal || transposed);
        }
        portable(job);
    }
}

/// Whether consecutive columns of a row are adjacent in memory.
fn unit_cols(v: &ArrayView2<f32>) -> bool {
    v.ncols() <= 1 || v.strides()[1] == 1
}

/// An operand as a pointer to its element (0, 0) and strides in elements.
#[derive(Clone, Copy)]
struct Raw<P> {
    ptr: P,
    rs: isize,
    cs: isize,
}

impl<P> Raw<P> {
    fn of(ptr: P, strides: &[isize]) -> Raw<P> {
        Raw {
            ptr,
            rs: strides[0],
            cs: strides[1],
        }
    }
}

/// One product C (+)= A·B with A (m, k), B (k, n), C (m, n), shared by all its tiles.
#[derive(Clone, Copy)]
struct Job {
    m: usize,
    k: usize,
    n: usize,
    a: Raw<*const f32>,
    b: Raw<*const f32>,
    c: Raw<*mut f32>,
    accumulate: bool,
}

impl Job {
    /// A[i, p].
    #[inline(always)]
    unsafe fn a(&self, i: usize, p: usize) -> f32 {
        *self
            .a
            .ptr
            .offset(i as isize * self.a.rs + p as isize * self.a.cs)
    }

    /// B[p, j].
    #[inline(always)]
    unsafe fn b(&self, p: usize, j: usize) -> f32 {
        *self
            .b
            .ptr
            .offset(p as isize * self.b.rs + j as isize * self.b.cs)
    }

    /// C[i, j].
    #[inline(always)]
    unsafe fn c(&self, i: usize, j: usize) -> *mut f32 {
        self.c
            .ptr
            .offset(i as isize * self.c.rs + j as isize * self.c.cs)
    }

    /// Adds one tile row `acc` into C[i, j0..] (or stores it on the first k-block when C is
    /// overwritten), as matrixmultiply does: C ← acc + C, or acc + 0, which turns −0 into +0.
    #[inline(always)]
    unsafe fn put(&self, i: usize, j0: usize, acc: &[f32], first_block: bool) {
        let overwrite = first_block && !self.accumulate;
        for (j, &s) in acc.iter().enumerate() {
            let o = self.c(i, j0 + j);
            *o = s + if overwrite { 0.0 } else { *o };
        }
    }
}

/// Every column, scalar tiles; multiply-adds unfused (FMA hardware takes the x86 path).
unsafe fn portable(job: Job) {
    scalar_columns::<false>(job, 0);
}

/// Columns from `j0` to the end, scalar tiles of 8 rows × 2 columns (16 independent chains to
/// cover the multiply-add latency), the odd one last.
#[inline(always)]
unsafe fn scalar_columns<const FUSED: bool>(job: Job, mut j0: usize) {
    while job.n - j0 >= 2 {
        scalar_block::<8, 2, FUSED>(job, j0);
        j0 += 2;
    }
    if j0 < job.n {
        scalar_block::<8, 1, FUSED>(job, j0);
    }
}

#[inline(always)]
unsafe fn scalar_block<const R: usize, const NB: usize, const FUSED: bool>(job: Job, j0: usize) {
    let mut i0 = 0;
    while job.m - i0 >= R {
        scalar_tile::<R, NB, FUSED>(&job, i0, j0);
        i0 += R;
    }
    while i0 < job.m {
        scalar_tile::<1, NB, FUSED>(&job, i0, j0);
        i0 += 1;
    }
}

/// C[i0..i0+R, j0..j0+NB] (+)= A[i0..i0+R, :]·B[:, j0..j0+NB].
#[inline(always)]
unsafe fn scalar_tile<const R: usize, const NB: usize, const FUSED: bool>(
    job: &Job,
    i0: usize,
    j0: usize,
) {
    let mut p0 = 0;
    while p0 < job.k {
        let p1 = (p0 + KC).min(job.k);
        let mut acc = [[0.0f32; NB]; R];
        for p in p0..p1 {
            let mut bv = [0.0f32; NB];
            for (j, x) in bv.iter_mut().enumerate() {
                *x = job.b(p, j0 + j);
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let av = job.a(i0 + r, p);
                for (s, &x) in acc.iter_mut().zip(&bv) {
                    *s = if FUSED {
                        av.mul_add(x, *s)
                    } else {
                        av * x + *s
                    };
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            job.put(i0 + r, j0, acc, p0 == 0);
        }
        p0 = p1;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{scalar_columns, Job, KC};
    use std::arch::x86_64::*;

    #[derive(Debug, Clone, Copy)]
    pub enum Simd {
        Avx512,
        Avx2,
    }

    impl Simd {
        /// The widest kernel this CPU runs (std caches the detection).
        pub fn detect() -> Option<Simd> {
            if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
                None
            } else if is_x86_feature_detected!("avx512f") {
                Some(Simd::Avx512)
            } else {
                Some(Simd::Avx2)
            }
        }
    }

    /// `unit_b`: B has unit column stride (or one column), as the vector tiles need.
    ///
    /// # Safety
    /// The CPU supports `simd`; the job is valid.
    pub unsafe fn run(simd: Simd, job: Job, unit_b: bool) {
        match simd {
            _ if !unit_b => fused_scalar(job),
            Simd::Avx512 => avx512(job),
            Simd::Avx2 => avx2(job),
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn fused_scalar(job: Job) {
        scalar_columns::<true>(job, 0);
    }

    // Tile shapes: R rows × V vectors of accumulators plus one row of B fit the 32 zmm / 16 ymm
    // registers, with enough independent chains to cover the FMA latency. Columns left over go
    // to narrower tiles, the last 1–7 to scalar ones (e.g. a 2-d latent output).
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn avx512(job: Job) {
        let mut j = 0;
        while job.n - j >= 64 {
            block512::<4, 4>(job, j);
            j += 64;
        }
        while job.n - j >= 16 {
            block512::<4, 1>(job, j);
            j += 16;
        }
        scalar_columns::<true>(job, j);
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(job: Job) {
        let mut j = 0;
        while job.n - j >= 16 {
            block256::<6, 2>(job, j);
            j += 16;
        }
        while job.n - j >= 8 {
            block256::<6, 1>(job, j);
            j += 8;
        }
        scalar_columns::<true>(job, j);
    }

    macro_rules! simd_block {
        ($block:ident, $tile:ident, $lanes:literal, $zero:ident, $load:ident, $store:ident,
         $set1:ident, $fmadd:ident, $add:ident, $feature:literal) => {
            /// Rows of the column block at `j0` (V vectors wide): R at a time, then one.
            #[target_feature(enable = $feature)]
            unsafe fn $block<const R: usize, const V: usize>(job: Job, j0: usize) {
                let mut i0 = 0;
                while job.m - i0 >= R {
                    $tile::<R, V>(&job, i0, j0);
                    i0 += R;
                }
                while i0 < job.m {
                    $tile::<1, V>(&job, i0, j0);
                    i0 += 1;
                }
            }

            /// C[i0..i0+R, j0..j0+V·lanes] (+)= A[i0..i0+R, :]·B[:, j0..j0+V·lanes].
            #[target_feature(enable = $feature)]
            #[inline]
            unsafe fn $tile<const R: usize, const V: usize>(job: &Job, i0: usize, j0: usize) {
                let mut p0 = 0;
                while p0 < job.k {
                    let p1 = (p0 + KC).min(job.k);
                    let mut acc = [[$zero(); V]; R];
                    for p in p0..p1 {
                        let brow = job.b.ptr.offset(p as isize * job.b.rs + j0 as isize);
                        let mut bv = [$zero(); V];
                        for (v, x) in bv.iter_mut().enumerate() {
                            *x = $load(brow.add($lanes * v));
                        }
                        for (r, acc) in acc.iter_mut().enumerate() {
                            let av = $set1(job.a(i0 + r, p));
                            for (s, &x) in acc.iter_mut().zip(&bv) {
                                *s = $fmadd(av, x, *s);
                            }
                        }
                    }
                    let overwrite = p0 == 0 && !job.accumulate;
                    for (r, acc) in acc.iter().enumerate() {
                        for (v, &s) in acc.iter().enumerate() {
                            let j = j0 + $lanes * v;
                            if job.c.cs == 1 {
                                let o = job.c(i0 + r, j);
                                let base = if overwrite { $zero() } else { $load(o) };
                                $store(o, $add(s, base));
                            } else {
                                let mut lanes = [0.0f32; $lanes];
                                $store(lanes.as_mut_ptr(), s);
                                job.put(i0 + r, j, &lanes, p0 == 0);
                            }
                        }
                    }
                    p0 = p1;
                }
            }
        };
    }

    simd_block!(
        block512,
        tile512,
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        "avx512f,avx2,fma"
    );
    simd_block!(
        block256,
        tile256,
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        "avx2,fma"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::linalg::general_mat_mul;
    use ndarray::{s, Array2};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |_| rng.gen_range(-1.0..1.0))
    }

    /// matrixmultiply's C (+)= A·B, the reference.
    fn reference(a: ArrayView2<f32>, b: ArrayView2<f32>, accumulate: bool, c: &mut Array2<f32>) {
        let beta = if accumulate { 1.0 } else { 0.0 };
        general_mat_mul(1.0, &a, &b, beta, c);
    }

    fn fma_hardware() -> bool {
        #[cfg(target_arch = "x86_64")]
        return is_x86_feature_detected!("fma") && is_x86_feature_detected!("avx2");
        #[allow(unreachable_code)]
        false
    }

    /// Every layout the layers use, shapes around each tile edge and across the k-block.
    #[test]
    fn matches_matrixmultiply() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let dims = [1, 2, 3, 7, 8, 17, 64, 70];
        let ks = [1, 2, 5, 64, 256, 300, 600];
        for &m in &dims {
            for &n in &dims {
                for &k in &ks {
                    let a = random(m, k, &mut rng);
                    let at = random(k, m, &mut rng); // used as Aᵀ: A with unit row stride
                    let b = random(k, n, &mut rng);
                    let bt = random(n, k, &mut rng); // used as Bᵀ: B with unit row stride
                    let c0 = random(m, n, &mut rng);
                    for (a, b, layout) in [
                        (a.view(), b.view(), "A·B"),
                        (at.t(), b.view(), "Aᵀ·B"),
                        (a.view(), bt.t(), "A·Bᵀ"),
                    ] {
                        for accumulate in [false, true] {
                            let mut ours = c0.clone();
                            gemm(a, b, accumulate, ours.view_mut());
                            let mut theirs = c0.clone();
                            reference(a, b, accumulate, &mut theirs);
                            let what = format!("{layout} m={m} n={n} k={k} acc={accumulate}");
                            if fma_hardware() {
                                assert_eq!(ours, theirs, "{what}");
                            } else {
                                assert!(ours.abs_diff_eq(&theirs, 1e-5 * k as f32), "{what}");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn portable_path_is_the_unfused_chain() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (a, b) = (random(11, 300, &mut rng), random(300, 5, &mut rng));
        let mut c = random(11, 5, &mut rng);
        let mut want = c.clone();
        for i in 0..11 {
            for j in 0..5 {
                let block = |ps: std::ops::Range<usize>| {
                    ps.fold(0.0f32, |acc, p| a[[i, p]] * b[[p, j]] + acc)
                };
                want[[i, j]] = block(KC..300) + (block(0..KC) + want[[i, j]]);
            }
        }
        let job = Job {
            m: 11,
            k: 300,
            n: 5,
            a: Raw::of(a.as_ptr(), a.strides()),
            b: Raw::of(b.as_ptr(), b.strides()),
            c: Raw::of(c.as_mut_ptr(), c.strides()),
            accumulate: true,
        };
        // SAFETY: the job describes the three arrays above, which stay alive and distinct.
        unsafe { portable(job) };
        assert_eq!(c, want);
    }

    #[test]
    fn strided_output_leaves_the_rest_alone() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let a = random(10, 33, &mut rng);
        let b = random(33, 20, &mut rng);
        let mut big = random(30, 40, &mut rng);
        let mut want = big.clone();
        gemm(a.view(), b.view(), true, big.slice_mut(s![..;3, 1..;2]));
        general_mat_mul(1.0, &a, &b, 1.0, &mut want.slice_mut(s![..;3, 1..;2]));
        assert!(big.abs_diff_eq(&want, 1e-5));
        assert_eq!(big.slice(s![1..;3, ..]), want.slice(s![1..;3, ..]));
        assert_eq!(big.slice(s![.., ..;2]), want.slice(s![.., ..;2]));
    }

    #[test]
    fn empty_inner_dimension_zeroes_or_keeps() {
        let a = Array2::<f32>::zeros((3, 0));
        let b = Array2::<f32>::zeros((0, 4));
        let mut c = Array2::<f32>::ones((3, 4));
        gemm(a.view(), b.view(), true, c.view_mut());
        assert_eq!(c, Array2::ones((3, 4)));
        gemm(a.view(), b.view(), false, c.view_mut());
        assert_eq!(c, Array2::zeros((3, 4)));
    }
}
