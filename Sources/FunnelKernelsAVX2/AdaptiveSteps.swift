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
        while j < count {
            let gj = load(g + j)
            let mj = b1 * load(m + j) + (1 - b1) * gj
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

/// `adaptiveSteps` compiled for AVX2 (256-bit vectors, `vsqrtps`/`vdivps` on eight lanes at once).
@inline(never)
public func adaptiveStepsAVX2(adam: Bool, _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>?,
                              _ s: UnsafeMutablePointer<Float>, count: Int, lr: Float, epsilon: Float, beta1: Float, beta2: Float,
                              step: Float, root: Float) {
    adaptiveSteps(adam: adam, p, g, m, s, count: count, lr: lr, epsilon: epsilon, beta1: beta1, beta2: beta2, step: step, root: root)
}
