// This module is compiled for x86-64 with AVX2 and FMA (see Package.swift). Nothing in it runs
// unless the caller has checked that the processor has both: `FunnelModels` dispatches here only
// when /proc/cpuinfo lists avx2 and fma, and keeps its baseline SIMD kernel otherwise.

import CPrefetch
import FunnelKernelsAVX512

/// C[p·columns + j] += Σ_q A(p, q)·B(q, j), A(p, q) = a[p·rowStride + q·innerStride], in `Float`
/// with fused multiply-adds. B(q, j) is b[q·columns + j], or b[j·inner + q] when `bTransposed`
/// (a matrix used transposed is read in place, without a transposed copy).
///
/// With `wide` (only when the processor has AVX-512F), the columns first go in strips of 32, each
/// tile of 6 × 32 in 512-bit registers (`fusedTile32`), and the 16- and 8-column strips take what
/// is left. Either way every element of C is computed by the same operations in the same order,
/// so `wide` changes the speed, not a bit of the result.
///
/// For each strip of 16 columns (then one of 8), the strip of B is copied to a contiguous,
/// cache-line-aligned panel (inner × 16 floats, transposed on the way when `bTransposed`) that
/// stays in the first-level cache, and every
/// block of 6 rows of C accumulates its 6 × 16 tile in twelve 256-bit registers over the whole
/// inner dimension, broadcasting A's six values of each inner index straight from A (rows
/// `rowStride` apart, inner indices `innerStride` apart): A is small and cache-resident here, so
/// reading it in place costs less than packing it. The rows past the last full block of 6 are
/// packed, zero-padded, into one block. Columns right of the strips go to a scalar loop. Each tile
/// first asks for its lines of C, which the backward pass's weight gradients (C there) often no
/// longer hold in cache: they arrive while the tile runs, instead of stalling its final adds.
@inline(never)
public func fusedGemm(_ a: UnsafePointer<Float>, rowStride: Int, innerStride: Int, _ b: UnsafePointer<Float>,
                      _ c: UnsafeMutablePointer<Float>, rows: Int, inner: Int, columns: Int, bTransposed: Bool = false, wide: Bool = false) {
    let full = rows / 6, rest = rows - 6 * full, wide32 = wide ? columns & ~31 : 0, wide16 = columns & ~15, wide8 = columns & ~7
    // With `wide`, the 16 to 24 columns of whole 8-column groups left after the 32-column strips
    // go in one more 512-bit strip, its panel zero-padded to 32 and only its real columns added to
    // C; the last few columns (fewer than 8) keep their scalar loop, as without `wide`.
    let partial = wide && wide8 - wide32 >= 16 ? wide8 - wide32 : 0
    if rows > 0 && wide8 > 0 && inner > 0 {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rest > 0 ? 6 * inner : 1) { tailBuffer in
            let tail = tailBuffer.baseAddress!
            if rest > 0 {
                for q in 0..<inner {
                    for r in 0..<6 { tail[6 * q + r] = r < rest ? a[(6 * full + r) * rowStride + q * innerStride] : 0 }
                }
            }
            let panelWidth = wide ? 32 : 16
            withUnsafeTemporaryAllocation(byteCount: inner * panelWidth * MemoryLayout<Float>.size, alignment: 64) { raw in
                let panel = raw.baseAddress!.bindMemory(to: Float.self, capacity: inner * panelWidth)
                var j = 0
                while j < wide32 + partial {
                    let width = min(32, wide32 + partial - j)
                    pack(b, columns: j, width: width, stride: 32, into: panel, inner: inner, rowLength: columns, transposed: bTransposed)
                    for blk in 0..<full {
                        fusedTile32(a + 6 * blk * rowStride, rowStep: rowStride, innerStep: innerStride, panel, c + blk * 6 * columns + j,
                                    inner: inner, columns: columns, valid: 6, width: width)
                    }
                    if rest > 0 {
                        fusedTile32(UnsafePointer(tail), rowStep: 1, innerStep: 6, panel, c + full * 6 * columns + j, inner: inner, columns: columns,
                                    valid: rest, width: width)
                    }
                    j += width
                }
                while j < wide16 {
                    pack(b, columns: j, width: 16, stride: 16, into: panel, inner: inner, rowLength: columns, transposed: bTransposed)
                    for blk in 0..<full {
                        tile16(a + 6 * blk * rowStride, rowStep: rowStride, innerStep: innerStride, panel, c + blk * 6 * columns + j, inner: inner, columns: columns, valid: 6)
                    }
                    if rest > 0 {
                        tile16(UnsafePointer(tail), rowStep: 1, innerStep: 6, panel, c + full * 6 * columns + j, inner: inner, columns: columns, valid: rest)
                    }
                    j += 16
                }
                if j < wide8 {
                    pack(b, columns: j, width: 8, stride: 8, into: panel, inner: inner, rowLength: columns, transposed: bTransposed)
                    for blk in 0..<full {
                        tile8(a + 6 * blk * rowStride, rowStep: rowStride, innerStep: innerStride, panel, c + blk * 6 * columns + j, inner: inner, columns: columns, valid: 6)
                    }
                    if rest > 0 {
                        tile8(UnsafePointer(tail), rowStep: 1, innerStep: 6, panel, c + full * 6 * columns + j, inner: inner, columns: columns, valid: rest)
                    }
                }
            }
        }
    }
    if wide8 < columns {
        for r in 0..<rows {
            let ar = a + r * rowStride, cr = c + r * columns
            for q in 0..<inner {
                let x = ar[q * innerStride]
                if bTransposed {
                    for jj in wide8..<columns { cr[jj] += x * b[jj * inner + q] }
                } else {
                    let br = b + q * columns
                    for jj in wide8..<columns { cr[jj] += x * br[jj] }
                }
            }
        }
    }
}

/// Columns j..<j + width of B (inner × width) into `panel`, row-major with rows `stride` ≥ width
/// floats apart (columns past `width` set to zero): copied from B's rows (length `rowLength`), or,
/// when `transposed`, gathered from the rows of the stored Bᵀ (length `inner`), the panel written
/// in order while the `width` source rows are read side by side.
@inline(__always)
private func pack(_ b: UnsafePointer<Float>, columns j: Int, width: Int, stride: Int, into panel: UnsafeMutablePointer<Float>, inner: Int,
                  rowLength: Int, transposed: Bool) {
    if transposed {
        let source = b + j * inner
        for q in 0..<inner {
            let out = panel + stride * q
            for jj in 0..<width { out[jj] = source[jj * inner + q] }
        }
    } else {
        for q in 0..<inner { (panel + stride * q).update(from: b + q * rowLength + j, count: width) }
    }
    if width < stride {
        for q in 0..<inner { (panel + stride * q + width).update(repeating: 0, count: stride - width) }
    }
}

/// C(valid × 16, row stride `columns`) += A(6 × inner) · panel(inner × 16), with A(r, q) at
/// a[r·rowStep + q·innerStep]: `fusedTile` in 256-bit registers.
@inline(__always)
private func tile16(_ a: UnsafePointer<Float>, rowStep: Int, innerStep: Int, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                    inner: Int, columns: Int, valid: Int) {
    fusedTile(SIMD8<Float>.self, a, rowStep: rowStep, innerStep: innerStep, b, c, inner: inner, columns: columns, valid: valid, width: 16)
}

/// C(valid × 8, row stride `columns`) += A(6 × inner) · panel(inner × 8), A as in `tile16`.
@inline(__always)
private func tile8(_ a: UnsafePointer<Float>, rowStep: Int, innerStep: Int, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                   inner: Int, columns: Int, valid: Int) {
    for r in 0..<valid { funnel_prefetch_write(c + r * columns); funnel_prefetch_write(c + r * columns + 7) }
    var s0 = SIMD8<Float>(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0
    let r1 = rowStep, r2 = 2 * rowStep, r3 = 3 * rowStep, r4 = 4 * rowStep, r5 = 5 * rowStep
    var x = a, bp = b
    for _ in 0..<inner {
        let bv = load(bp)
        s0 = s0.addingProduct(SIMD8(repeating: x[0]), bv)
        s1 = s1.addingProduct(SIMD8(repeating: x[r1]), bv)
        s2 = s2.addingProduct(SIMD8(repeating: x[r2]), bv)
        s3 = s3.addingProduct(SIMD8(repeating: x[r3]), bv)
        s4 = s4.addingProduct(SIMD8(repeating: x[r4]), bv)
        s5 = s5.addingProduct(SIMD8(repeating: x[r5]), bv)
        x += innerStep
        bp += 8
    }
    add(s0, c, valid > 0); add(s1, c + columns, valid > 1); add(s2, c + 2 * columns, valid > 2)
    add(s3, c + 3 * columns, valid > 3); add(s4, c + 4 * columns, valid > 4); add(s5, c + 5 * columns, valid > 5)
}

/// C's row at `p` (8 floats) += v, when the row exists.
@inline(__always)
private func add(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ exists: Bool) {
    if exists { store(load(p) + v, p) }
}
@inline(__always)
private func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
@inline(__always)
private func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
@inline(__always)
private func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self) }
