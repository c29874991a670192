import CPrefetch
import Foundation

/// Prediction-time scoring of the linear and factorization-machine models: the weights read in
/// place from the model file's array (no copies), rows split into one contiguous range per
/// thread, and an FM's factors in vector registers.
enum Scoring {
    /// Rows below which a second thread costs more than it saves.
    static let rowsPerThread = 8_192

    /// `body(range, out)` over contiguous ranges of `0..<rows`, one per thread; `out` is the
    /// result's storage, each range writing only its own entries.
    static func parallelRows(_ rows: Int, threads: Int,
                             _ body: @Sendable (Range<Int>, UnsafeMutablePointer<Double>) -> Void) -> [Double] {
        let parts = max(1, min(threads, rows / rowsPerThread))
        return [Double](unsafeUninitializedCapacity: rows) { buffer, count in
            let out = Shared(buffer.baseAddress!)
            if parts == 1 {
                body(0..<rows, out.value)
            } else {
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    body((rows * part / parts)..<(rows * (part + 1) / parts), out.value)
                }
            }
            count = rows
        }
    }

    /// bias + Σ_f w[i_f]·x_f per row, summed in Double in field order; `weights` holds w then
    /// the bias. Four rows at a time, so that their four chains of
    /// additions overlap.
    static func linearLogits(_ weights: [Float], _ t: Table, threads: Int, then finish: @Sendable (Double) -> Double) -> [Double] {
        let f = t.fields
        // No cells to read (no rows, or a spec without features): every row is the bias alone.
        guard t.rows > 0, f > 0 else { return [Double](repeating: finish(Double(weights[weights.count - 1])), count: t.rows) }
        return weights.withUnsafeBufferPointer { wb in
            t.indices.withUnsafeBufferPointer { ib in
                t.values.withUnsafeBufferPointer { vb in
                    let w = Shared(wb.baseAddress!), ix = Shared(ib.baseAddress!), vx = Shared(vb.baseAddress!)
                    let bias = Double(wb[wb.count - 1])
                    return parallelRows(t.rows, threads: threads) { range, out in
                        let w = w.value, ix = ix.value, vx = vx.value
                        var r = range.lowerBound
                        while r + 4 <= range.upperBound {
                            var s0 = bias, s1 = bias, s2 = bias, s3 = bias
                            let i0 = ix + r * f, v0 = vx + r * f
                            for q in 0..<f {
                                s0 += Double(w[Int(i0[q])]) * Double(v0[q])
                                s1 += Double(w[Int(i0[f + q])]) * Double(v0[f + q])
                                s2 += Double(w[Int(i0[2 * f + q])]) * Double(v0[2 * f + q])
                                s3 += Double(w[Int(i0[3 * f + q])]) * Double(v0[3 * f + q])
                            }
                            out[r] = s0; out[r + 1] = s1; out[r + 2] = s2; out[r + 3] = s3
                            r += 4
                        }
                        while r < range.upperBound {
                            var s = bias
                            for q in 0..<f { s += Double(w[Int(ix[r * f + q])]) * Double(vx[r * f + q]) }
                            out[r] = s
                            r += 1
                        }
                        for r in range { out[r] = finish(out[r]) }
                    }
                }
            }
        }
    }

    /// A factorization machine's logits, with `weights` in file order (w, the bias, V). The
    /// factors go through `SIMD8` (or `SIMD4`) lanes, so the two sums over fields run in
    /// registers and the Σ e² term is summed per lane first: the same formula as
    /// `FactorizationMachine.logit`, in a different order of Float additions.
    static func fmLogits(_ weights: [Float], slots: Int, factors k: Int, _ t: Table, threads: Int,
                         then finish: @Sendable (Double) -> Double) -> [Double] {
        if k % 8 == 0 { return fmLogits(weights, slots: slots, factors: k, t, threads: threads, lanes: SIMD8<Float>.self, then: finish) }
        if k % 4 == 0 { return fmLogits(weights, slots: slots, factors: k, t, threads: threads, lanes: SIMD4<Float>.self, then: finish) }
        let fm = FactorizationMachine<Float>(slots: slots, factors: k, bias: weights[slots], w: Array(weights[0..<slots]),
                                             v: Array(weights[(slots + 1)...]))
        return fm.logits(t).map(finish)
    }

    @inline(__always)
    private static func fmLogits<V: SIMD & Sendable>(_ weights: [Float], slots: Int, factors k: Int, _ t: Table, threads: Int,
                                                     lanes: V.Type, then finish: @Sendable (Double) -> Double) -> [Double] where V.Scalar == Float {
        let f = t.fields, chunks = k / V.scalarCount
        guard t.rows > 0, f > 0 else { return [Double](repeating: finish(Double(weights[slots])), count: t.rows) }
        return weights.withUnsafeBufferPointer { wb in
            t.indices.withUnsafeBufferPointer { ib in
                t.values.withUnsafeBufferPointer { vb in
                    let base = Shared(wb.baseAddress!), ix = Shared(ib.baseAddress!), vx = Shared(vb.baseAddress!)
                    return parallelRows(t.rows, threads: threads) { range, out in
                        let w = base.value, bias = w[slots], ix = ix.value, vx = vx.value
                        let v = UnsafeRawPointer(w + slots + 1)
                        for r in range {
                            let i = ix + r * f, x = vx + r * f
                            // The rows of V and entries of w that row r + 4 reads: most are cache misses.
                            if r + 4 < range.upperBound {
                                for q in (r + 4) * f..<(r + 5) * f {
                                    let slot = Int(ix[q])
                                    funnel_prefetch(w + slot)
                                    funnel_prefetch(v + slot * k * 4)
                                }
                            }
                            var linear = bias
                            var pair: Float = 0, squares: Float = 0
                            for c in 0..<chunks {
                                var sums = V(), sq = V()
                                for q in 0..<f {
                                    let slot = Int(i[q])
                                    if c == 0 { linear += w[slot] * x[q] }
                                    let e = v.loadUnaligned(fromByteOffset: (slot * k + c * V.scalarCount) * 4, as: V.self) * x[q]
                                    sums += e
                                    sq += e * e
                                }
                                pair += (sums * sums).sum()
                                squares += sq.sum()
                            }
                            out[r] = finish(Double(linear + (pair - squares) / 2))
                        }
                    }
                }
            }
        }
    }

    /// `finish` applied to every entry of `values`, over `threads` threads.
    static func map(_ values: [Double], threads: Int, _ finish: @Sendable (Double) -> Double) -> [Double] {
        guard !values.isEmpty else { return [] }
        return values.withUnsafeBufferPointer { vb in
            let z = Shared(vb.baseAddress!)
            return parallelRows(values.count, threads: threads) { range, out in
                for r in range { out[r] = finish(z.value[r]) }
            }
        }
    }
}
