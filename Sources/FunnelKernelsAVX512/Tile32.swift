// This module is compiled for x86-64 with AVX-512F (and AVX2, FMA; see Package.swift). Nothing in
// it runs unless the caller has checked that the processor has them: `FunnelModels` asks for the
// wide tiles only when /proc/cpuinfo lists avx512f, avx2 and fma.

import CPrefetch

/// C(valid × width) += A(6 × inner) · panel(inner × 32)'s first `width` columns (the panel zero
/// beyond them), with A(r, q) at a[r·rowStep + q·innerStep] and C's rows `columns` apart: the
/// 6 × 32 tile of `fusedGemm`'s 32-column strips, `fusedTile` in 512-bit registers (C = A·B, or
/// bias + A·B, without reading C, when not `accumulate`; see `fusedTile`).
@inline(never)
public func fusedTile32(_ a: UnsafePointer<Float>, rowStep: Int, innerStep: Int, _ b: UnsafePointer<Float>,
                        _ c: UnsafeMutablePointer<Float>, inner: Int, columns: Int, valid: Int, width: Int,
                        accumulate: Bool, bias: UnsafePointer<Float>?) {
    fusedTile(SIMD16<Float>.self, a, rowStep: rowStep, innerStep: innerStep, b, c, inner: inner, columns: columns, valid: valid, width: width,
              accumulate: accumulate, bias: bias)
}

/// C(valid × width) += A(6 × inner) · panel(inner × 2n)'s first `width` columns, n being the lanes
/// of `V`: the fused kernel's tile, with twelve `V` sums held over the whole inner dimension. A's
/// six values of each inner index are broadcast straight from A; each tile first asks for its lines
/// of C. Written once for every width: `FunnelKernelsAVX2` inlines it with `SIMD8` into its AVX2
/// code (the 6 × 16 tile) and with `SIMD4` (the 6 × 8 tile of the last few columns),
/// `fusedTile32` here with `SIMD16` into 512-bit code.
///
/// Every element of C gets the same operations in the same order at any width: a sum that
/// starts at zero, one fused multiply-add per inner index in increasing order, then one addition
/// to its starting value: C's own when `accumulate`, else the `bias` row's (its first `width`
/// values, the same for every row), else zero, C's old values then never read. Starting from
/// zero or the bias row gives, to the bit, what adding to a C holding them would give. So the
/// 512-bit tiles' products are bit-identical to the AVX2 tiles'.
@inlinable @inline(__always)
public func fusedTile<V: SIMD>(_ lanes: V.Type, _ a: UnsafePointer<Float>, rowStep: Int, innerStep: Int, _ b: UnsafePointer<Float>,
                               _ c: UnsafeMutablePointer<Float>, inner: Int, columns: Int, valid: Int, width: Int,
                               accumulate: Bool, bias: UnsafePointer<Float>?) where V.Scalar == Float {
    let n = V.scalarCount
    for r in 0..<valid {
        let row = c + r * columns
        funnel_prefetch_write(row); funnel_prefetch_write(row + width - 1)
        if width > 16 { funnel_prefetch_write(row + 16) }
    }
    @inline(__always) func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    var s0 = V(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0, s8 = s0, s9 = s0, s10 = s0, s11 = s0
    /// The whole inner loop, A's rows r1…r5 floats after the first. Called with constant offsets
    /// when A's six values of an inner index are adjacent, so that all six are read at fixed
    /// offsets from one pointer (a chain of five dependent pointer additions per inner index
    /// otherwise stands between consecutive iterations' loads).
    @inline(__always) func run(_ r1: Int, _ r2: Int, _ r3: Int, _ r4: Int, _ r5: Int) {
        var x = a, bp = b
        for _ in 0..<inner {
            let lo = load(bp), hi = load(bp + n)
            var v = V(repeating: x[0])
            s0 = s0.addingProduct(v, lo); s1 = s1.addingProduct(v, hi)
            v = V(repeating: x[r1])
            s2 = s2.addingProduct(v, lo); s3 = s3.addingProduct(v, hi)
            v = V(repeating: x[r2])
            s4 = s4.addingProduct(v, lo); s5 = s5.addingProduct(v, hi)
            v = V(repeating: x[r3])
            s6 = s6.addingProduct(v, lo); s7 = s7.addingProduct(v, hi)
            v = V(repeating: x[r4])
            s8 = s8.addingProduct(v, lo); s9 = s9.addingProduct(v, hi)
            v = V(repeating: x[r5])
            s10 = s10.addingProduct(v, lo); s11 = s11.addingProduct(v, hi)
            x += innerStep
            bp += 2 * n
        }
    }
    if rowStep == 1 { run(1, 2, 3, 4, 5) } else { run(rowStep, 2 * rowStep, 3 * rowStep, 4 * rowStep, 5 * rowStep) }
    /// C's row `r` = its starting values + (lo, hi), when the row exists: whole vectors when the
    /// tile is full width.
    @inline(__always) func add(_ lo: V, _ hi: V, _ r: Int) {
        guard r < valid else { return }
        let p = c + r * columns
        if width == 2 * n {
            let start: (V, V)
            if accumulate { start = (load(p), load(p + n)) } else if let q = bias { start = (load(q), load(q + n)) } else { start = (V(), V()) }
            UnsafeMutableRawPointer(p).storeBytes(of: start.0 + lo, as: V.self)
            UnsafeMutableRawPointer(p + n).storeBytes(of: start.1 + hi, as: V.self)
        } else {
            @inline(__always) func start(_ e: Int) -> Float { accumulate ? p[e] : bias?[e] ?? 0 }
            for e in 0..<min(width, n) { p[e] = start(e) + lo[e] }
            for e in n..<max(width, n) { p[e] = start(e) + hi[e - n] }
        }
    }
    add(s0, s1, 0); add(s2, s3, 1); add(s4, s5, 2); add(s6, s7, 3); add(s8, s9, 4); add(s10, s11, 5)
}
