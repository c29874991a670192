// This module is compiled for x86-64 with AVX2 and FMA (see Package.swift). Nothing in it runs
// unless the caller has checked that the processor has both: `FunnelModels` dispatches here only
// when /proc/cpuinfo lists avx2 and fma, and keeps its baseline SIMD kernel otherwise.

import FunnelKernelsAVX512

/// C[p·columns + j] += Σ_q A(p, q)·B(q, j), A(p, q) = a[p·rowStride + q·innerStride], in `Float`
/// with fused multiply-adds. B(q, j) is b[q·columns + j], or b[j·inner + q] when `bTransposed`
/// (a matrix used transposed is read in place, without a transposed copy). When not `accumulate`,
/// C's old values are never read: C = A·B, or C = bias + A·B with `bias` (row j's element at
/// bias[j], the same for every row of C, e.g. a layer's bias over a batch). Those give the bits of
/// adding to a C that held zeros or copies of the bias row, without the copies or reads of C.
///
/// The columns go in strips: of 32 with `wide` (only when the processor has AVX-512F), each tile
/// of 6 × 32 in 512-bit registers (`fusedTile32`), otherwise of 16 in 256-bit registers. The last
/// strip takes what is left: up to 32 columns (more than 16) in a 32-column tile, up to 16 in a
/// 16-column one, up to 8 in an 8-column one, its panel zero-padded and only its real columns
/// added to C. Every element of C is computed by the same operations in the same order whatever
/// its strip (a sum from zero, one fused multiply-add per inner index in increasing order, one
/// addition to C), so `wide` changes the speed, not a bit of the result.
///
/// For each strip, the strip of B is copied to a contiguous, cache-line-aligned panel (inner × 32,
/// 16 or 8 floats; transposed on the way, in 8 × 8 blocks in registers, when `bTransposed`) that
/// stays in the first-level cache, and every block of 6 rows of C accumulates its tile
/// (`fusedTile`) in twelve registers over the whole inner dimension, broadcasting A's six values
/// of each inner index straight from A (rows `rowStride` apart, inner indices `innerStride`
/// apart): A is small and cache-resident here, so reading it in place costs less than packing
/// it. The rows past the last full block of 6 are packed, zero-padded, into one block. Each tile
/// first asks for its lines of C, which the backward pass's weight gradients (C there) often no
/// longer hold in cache: they arrive while the tile runs, instead of stalling its final adds.
@inline(never)
public func fusedGemm(_ a: UnsafePointer<Float>, rowStride: Int, innerStride: Int, _ b: UnsafePointer<Float>,
                      _ c: UnsafeMutablePointer<Float>, rows: Int, inner: Int, columns: Int, bTransposed: Bool = false, wide: Bool = false,
                      accumulate: Bool = true, bias: UnsafePointer<Float>? = nil) {
    guard rows > 0 && columns > 0 else { return }
    guard inner > 0 else { return fill(c, rows: rows, columns: columns, accumulate: accumulate, bias: bias) }
    let panelWidth = wide ? 32 : 16
    withUnsafeTemporaryAllocation(byteCount: inner * panelWidth * MemoryLayout<Float>.size, alignment: 64) { raw in
        let panel = raw.baseAddress!.bindMemory(to: Float.self, capacity: inner * panelWidth)
        strips(a, rowStride: rowStride, innerStride: innerStride, c, rows: rows, inner: inner, columns: columns, wide: wide,
               accumulate: accumulate, bias: bias) { j, stride, width, _ in
            pack(b, columns: j, width: width, stride: stride, into: panel, inner: inner, rowLength: columns, transposed: bTransposed)
            return UnsafePointer(panel)
        }
    }
}

/// `fusedGemm` with B already in `panels`, as `packPanels` lays it out for the same `inner`,
/// `columns` and `wide`: the product of a weight that many calls share, packed once for all of
/// them (the same operations, so the same result to the bit).
@inline(never)
public func fusedGemm(_ a: UnsafePointer<Float>, rowStride: Int, innerStride: Int, panels: UnsafePointer<Float>,
                      _ c: UnsafeMutablePointer<Float>, rows: Int, inner: Int, columns: Int, wide: Bool = false,
                      accumulate: Bool = true, bias: UnsafePointer<Float>? = nil) {
    guard rows > 0 && columns > 0 else { return }
    guard inner > 0 else { return fill(c, rows: rows, columns: columns, accumulate: accumulate, bias: bias) }
    strips(a, rowStride: rowStride, innerStride: innerStride, c, rows: rows, inner: inner, columns: columns, wide: wide,
           accumulate: accumulate, bias: bias) { _, _, _, offset in
        panels + offset
    }
}

/// C's starting values for an empty product (`inner` = 0), where no tile runs: C as it is when
/// `accumulate`, else the bias row in every row, or zeros.
private func fill(_ c: UnsafeMutablePointer<Float>, rows: Int, columns: Int, accumulate: Bool, bias: UnsafePointer<Float>?) {
    if accumulate { return }
    if let bias { for r in 0..<rows { (c + r * columns).update(from: bias, count: columns) } } else { c.update(repeating: 0, count: rows * columns) }
}

/// Floats `packPanels` writes for a B of `inner` × `columns`: a panel of `inner` × 32, 16 or 8
/// floats for each strip of columns.
public func packedPanelsCount(inner: Int, columns: Int, wide: Bool) -> Int {
    var count = 0
    forEachStrip(inner: inner, columns: columns, wide: wide) { _, stride, _, _ in count += inner * stride }
    return count
}

/// Every strip's panel of B (inner × columns) into `out`, one after the other, as `fusedGemm`
/// packs them one at a time: `packedPanelsCount` floats.
public func packPanels(_ b: UnsafePointer<Float>, inner: Int, columns: Int, wide: Bool, into out: UnsafeMutablePointer<Float>) {
    forEachStrip(inner: inner, columns: columns, wide: wide) { j, stride, width, offset in
        pack(b, columns: j, width: width, stride: stride, into: out + offset, inner: inner, rowLength: columns, transposed: false)
    }
}

/// `body(j, stride, width, offset)` for each strip of columns in order: its first column `j`, its
/// panel's row length (32 with `wide` and more than 16 columns left, else 16 with more than 8
/// left, else 8), its real columns, and where its panel starts among all the strips' panels laid
/// end to end. The one definition of the strips, for the kernel and for packing ahead of it.
@inline(__always)
private func forEachStrip(inner: Int, columns: Int, wide: Bool, _ body: (_ j: Int, _ stride: Int, _ width: Int, _ offset: Int) -> Void) {
    var j = 0, offset = 0
    while j < columns {
        let left = columns - j
        let stride = wide && left > 16 ? 32 : left > 8 ? 16 : 8, width = min(stride, left)
        body(j, stride, width, offset)
        offset += inner * stride
        j += width
    }
}

/// The driver of both `fusedGemm`s: for each strip of columns, `panel(j, stride, width, offset)`
/// gives the strip's panel (`offset` being where it starts among all the strips' panels laid end
/// to end), and every block of 6 rows of C gets its tile over it.
@inline(__always)
private func strips(_ a: UnsafePointer<Float>, rowStride: Int, innerStride: Int, _ c: UnsafeMutablePointer<Float>, rows: Int, inner: Int,
                    columns: Int, wide: Bool, accumulate: Bool, bias: UnsafePointer<Float>?,
                    panel: (_ j: Int, _ stride: Int, _ width: Int, _ offset: Int) -> UnsafePointer<Float>) {
    let full = rows / 6, rest = rows - 6 * full
    withUnsafeTemporaryAllocation(of: Float.self, capacity: rest > 0 ? 6 * inner : 1) { tailBuffer in
        let tail = tailBuffer.baseAddress!
        if rest > 0 {
            for q in 0..<inner {
                for r in 0..<6 { tail[6 * q + r] = r < rest ? a[(6 * full + r) * rowStride + q * innerStride] : 0 }
            }
        }
        forEachStrip(inner: inner, columns: columns, wide: wide) { j, stride, width, offset in
            let b = panel(j, stride, width, offset), bias = bias.map { $0 + j }
            @inline(__always) func tile(_ a: UnsafePointer<Float>, rowStep: Int, innerStep: Int, _ c: UnsafeMutablePointer<Float>, valid: Int) {
                switch stride {
                case 32: fusedTile32(a, rowStep: rowStep, innerStep: innerStep, b, c, inner: inner, columns: columns, valid: valid, width: width,
                                     accumulate: accumulate, bias: bias)
                // `fusedTile` in 256-bit registers, and in 128-bit ones for the strip of the last few columns.
                case 16: fusedTile(SIMD8<Float>.self, a, rowStep: rowStep, innerStep: innerStep, b, c, inner: inner, columns: columns,
                                   valid: valid, width: width, accumulate: accumulate, bias: bias)
                default: fusedTile(SIMD4<Float>.self, a, rowStep: rowStep, innerStep: innerStep, b, c, inner: inner, columns: columns,
                                   valid: valid, width: width, accumulate: accumulate, bias: bias)
                }
            }
            for blk in 0..<full { tile(a + 6 * blk * rowStride, rowStep: rowStride, innerStep: innerStride, c + blk * 6 * columns + j, valid: 6) }
            if rest > 0 { tile(UnsafePointer(tail), rowStep: 1, innerStep: 6, c + full * 6 * columns + j, valid: rest) }
        }
    }
}

/// Columns j..<j + width of B (inner × width) into `panel`, row-major with rows `stride` ≥ width
/// floats apart (columns past `width` set to zero): copied from B's rows (length `rowLength`), or,
/// when `transposed`, gathered from the rows of the stored Bᵀ (length `inner`).
@inline(__always)
private func pack(_ b: UnsafePointer<Float>, columns j: Int, width: Int, stride: Int, into panel: UnsafeMutablePointer<Float>, inner: Int,
                  rowLength: Int, transposed: Bool) {
    if transposed {
        // Blocks of 8 × 8 transposed in registers; what is left over (fewer than 8 inner indices,
        // or columns) one value at a time.
        let source = b + j * inner, innerBlocked = inner & ~7, widthBlocked = width & ~7
        var q = 0
        while q < innerBlocked {
            var jj = 0
            while jj < widthBlocked {
                transposeBlock8(source + jj * inner + q, sourceStride: inner, panel + stride * q + jj, destinationStride: stride)
                jj += 8
            }
            q += 8
        }
        for jj in 0..<width {
            let from = source + jj * inner
            for q in (jj < widthBlocked ? innerBlocked : 0)..<inner { panel[stride * q + jj] = from[q] }
        }
    } else {
        for q in 0..<inner { (panel + stride * q).update(from: b + q * rowLength + j, count: width) }
    }
    if width < stride {
        for q in 0..<inner { (panel + stride * q + width).update(repeating: 0, count: stride - width) }
    }
}

/// destination[i·destinationStride + j] = source[j·sourceStride + i] for i, j in 0..<8: eight rows
/// loaded as vectors and transposed in registers by three rounds of de-interleaving pairs of rows
/// (each round turns the 6-bit position (row, column) one bit to the right, so three rounds swap
/// row and column).
@inline(__always)
private func transposeBlock8(_ source: UnsafePointer<Float>, sourceStride: Int, _ destination: UnsafeMutablePointer<Float>,
                             destinationStride: Int) {
    var v0 = load(source), v1 = load(source + sourceStride), v2 = load(source + 2 * sourceStride), v3 = load(source + 3 * sourceStride)
    var v4 = load(source + 4 * sourceStride), v5 = load(source + 5 * sourceStride), v6 = load(source + 6 * sourceStride)
    var v7 = load(source + 7 * sourceStride)
    for _ in 0..<3 {
        let p0 = SIMD16(lowHalf: v0, highHalf: v1), p1 = SIMD16(lowHalf: v2, highHalf: v3)
        let p2 = SIMD16(lowHalf: v4, highHalf: v5), p3 = SIMD16(lowHalf: v6, highHalf: v7)
        v0 = p0.evenHalf; v1 = p1.evenHalf; v2 = p2.evenHalf; v3 = p3.evenHalf
        v4 = p0.oddHalf; v5 = p1.oddHalf; v6 = p2.oddHalf; v7 = p3.oddHalf
    }
    let d = destinationStride
    store(v0, destination); store(v1, destination + d); store(v2, destination + 2 * d); store(v3, destination + 3 * d)
    store(v4, destination + 4 * d); store(v5, destination + 5 * d); store(v6, destination + 6 * d); store(v7, destination + 7 * d)
}

/// Eight floats from or to memory, unaligned (this module's loops).
@inline(__always)
func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
@inline(__always)
func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }
@inline(__always)
func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self) }
