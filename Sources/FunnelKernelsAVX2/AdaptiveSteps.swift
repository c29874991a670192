// The optimisers' step over contiguous Float parameters, written once and compiled twice: callers
// outside this module inline `adaptiveSteps` into their own (baseline) code, and
// `adaptiveStepsAVX2` is this module's AVX2 compilation of the same loop, called only after the
// processor check (see FusedGemm.swift).

/// Adagrad (`adam` false: s += g², p −= lr·g/(√s + ε)) or Adam (m = β₁m + (1 − β₁)g,
/// s = β₂s + (1 − β₂)g², p −= step·m/(√s/root + ε), `step` and `root` being the bias corrections)
/// on the first `count` parameters at `p`, eight at a time; `count` must be a multiple of 8, and `m`
/// (the first moments) is required for Adam and unused by Adagrad. Every lane does the scalar formula's operations in the same order, with
/// IEEE square root and division and no fused multiply-add, so both compilations and the scalar
/// loop give bit-identical parameters.
@inlinable @inline(__always)
public func adaptiveSteps(adam: Bool, _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>?,
                          _ s: UnsafeMutablePointer<Float>, count: Int, lr: Float, epsilon eps: Float, beta1 b1: Float, beta2 b2: Float,
                          step: Float, root: Float) {
    @inline(__always) func load(_ x: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(x).loadUnaligned(as: SIMD8<Float>.self) }
    @inline(__always) func store(_ v: SIMD8<Float>, _ x: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(x).storeBytes(of: v, as: SIMD8<Float>.self) }
    var j = 0
    if adam {
        guard let m else { preconditionFailure("Adam's step needs its first moments") }
        let floor = adamMomentFloor(step: step)
        while j < count {
            let gj = load(g + j)
            var mj = b1 * load(m + j) + (1 - b1) * gj
            mj.replace(with: 0, where: (mj .< floor) .& (mj .> -floor))
            let sj = b2 * load(s + j) + (1 - b2) * gj * gj
            store(mj, m + j); store(sj, s + j)
            store(load(p + j) - step * mj / (sj.squareRoot() / root + eps), p + j)
            j += 8
        }
    } else {
        while j < count {
            let gj = load(g + j), sj = load(s + j) + gj * gj
            store(sj, s + j)
            store(load(p + j) - lr * gj / (sj.squareRoot() + eps), p + j)
            j += 8
        }
    }
}

/// Adam's first moments smaller in magnitude than this are set to zero, by `adaptiveSteps` and by
/// the scalar loop in FunnelModels (which also uses it for `Double`). A weight whose gradient stays zero (a ReLU unit
/// that no longer fires) has its moment shrink by β₁ every step, into the subnormal floats, whose
/// arithmetic this processor does in slow microcode: without this floor, the dense step of a
/// DCN-v2 spends three to four times as long on the MLP's half of the weights as on the other
/// half. The floor is the smallest normal Float over `step` (the bias-corrected learning rate), so
/// `step·m` is never subnormal either. The update such a moment would have made is below
/// `step·floor/ε` = FLT_MIN/ε ≈ 1e-30, far under a rounding unit of any weight not itself within
/// about 1e-22 of zero, so flushing it leaves the parameters as they were.
@inlinable @inline(__always)
public func adamMomentFloor<S: BinaryFloatingPoint>(step: S) -> S { S(Float.leastNormalMagnitude) / min(abs(step), 1) }

/// `adaptiveSteps` compiled for AVX2 (256-bit vectors, `vsqrtps`/`vdivps` on eight lanes at once).
@inline(never)
public func adaptiveStepsAVX2(adam: Bool, _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>?,
                              _ s: UnsafeMutablePointer<Float>, count: Int, lr: Float, epsilon: Float, beta1: Float, beta2: Float,
                              step: Float, root: Float) {
    adaptiveSteps(adam: adam, p, g, m, s, count: count, lr: lr, epsilon: epsilon, beta1: beta1, beta2: beta2, step: step, root: root)
}
