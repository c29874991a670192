// This module is compiled for x86-64 with AVX-512F (and AVX2, FMA; see Package.swift). Nothing in
// it runs unless the caller has checked that the processor has them: `FunnelModels` asks for the
// wide tiles only when /proc/cpuinfo lists avx512f, avx2 and fma.

import CPrefetch

/// C(valid × width, row stride `columns`) += A(6 × inner) · panel(inner × 32)'s first `width`
/// columns (the panel zero beyond them), with A(r, q) at a[r·rowStep + q·innerStep]: the 6 × 32
/// tile of `fusedGemm`'s 32-column strips, in twelve 512-bit registers over the whole inner
/// dimension.
///
/// Every element of C gets the same operations in the same order as in the AVX2 tiles: a sum
/// that starts at zero, one fused multiply-add per inner index in increasing order, then one
/// addition to C. So the products are bit-identical to the AVX2 kernel's, twice as wide per
/// instruction.
@inline(never)
public func fusedTile32(_ a: UnsafePointer<Float>, rowStep: Int, innerStep: Int, _ b: UnsafePointer<Float>,
                        _ c: UnsafeMutablePointer<Float>, inner: Int, columns: Int, valid: Int, width: Int = 32) {
    for r in 0..<valid {
        let row = c + r * columns
        funnel_prefetch_write(row); funnel_prefetch_write(row + 16); funnel_prefetch_write(row + width - 1)
    }
    var s0 = SIMD16<Float>(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0, s8 = s0, s9 = s0, s10 = s0, s11 = s0
    let r1 = rowStep, r2 = 2 * rowStep, r3 = 3 * rowStep, r4 = 4 * rowStep, r5 = 5 * rowStep
    var x = a, bp = b
    for _ in 0..<inner {
        let lo = load(bp), hi = load(bp + 16)
        var v = SIMD16(repeating: x[0])
        s0 = s0.addingProduct(v, lo); s1 = s1.addingProduct(v, hi)
        v = SIMD16(repeating: x[r1])
        s2 = s2.addingProduct(v, lo); s3 = s3.addingProduct(v, hi)
        v = SIMD16(repeating: x[r2])
        s4 = s4.addingProduct(v, lo); s5 = s5.addingProduct(v, hi)
        v = SIMD16(repeating: x[r3])
        s6 = s6.addingProduct(v, lo); s7 = s7.addingProduct(v, hi)
        v = SIMD16(repeating: x[r4])
        s8 = s8.addingProduct(v, lo); s9 = s9.addingProduct(v, hi)
        v = SIMD16(repeating: x[r5])
        s10 = s10.addingProduct(v, lo); s11 = s11.addingProduct(v, hi)
        x += innerStep
        bp += 32
    }
    if width == 32 {
        add(s0, s1, c, valid > 0); add(s2, s3, c + columns, valid > 1); add(s4, s5, c + 2 * columns, valid > 2)
        add(s6, s7, c + 3 * columns, valid > 3); add(s8, s9, c + 4 * columns, valid > 4); add(s10, s11, c + 5 * columns, valid > 5)
    } else {
        let sums = [(s0, s1), (s2, s3), (s4, s5), (s6, s7), (s8, s9), (s10, s11)]
        for r in 0..<valid {
            let row = c + r * columns, (lo, hi) = sums[r]
            for e in 0..<min(width, 16) { row[e] += lo[e] }
            for e in 16..<max(width, 16) { row[e] += hi[e - 16] }
        }
    }
}

/// C's row at `p` (32 floats) += (lo, hi), when the row exists.
@inline(__always)
private func add(_ lo: SIMD16<Float>, _ hi: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>, _ exists: Bool) {
    if exists {
        UnsafeMutableRawPointer(p).storeBytes(of: load(p) + lo, as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(p + 16).storeBytes(of: load(p + 16) + hi, as: SIMD16<Float>.self)
    }
}
@inline(__always)
private func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
@inline(__always)
private func load(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }
