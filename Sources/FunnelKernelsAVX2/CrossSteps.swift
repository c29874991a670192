// The DCN-v2 layers' elementwise passes over a block's activations, compiled for AVX2 (see
// FusedGemm.swift for when this module runs). Each lane does the scalar loop's operations in the
// same order, a product and a separate sum (never a fused multiply-add), so the results are the
// baseline loops' to the bit; only the vector width differs.

/// next[e] = x0[e]·u[e] + xl[e] for e in 0..<count: a cross layer's output.
@inline(never)
public func crossForwardAVX2(_ x0: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ xl: UnsafePointer<Float>,
                             _ next: UnsafeMutablePointer<Float>, count: Int) {
    var e = 0
    while e + 8 <= count {
        store(load(x0 + e) * load(u + e) + load(xl + e), next + e)
        e += 8
    }
    while e < count { next[e] = x0[e] * u[e] + xl[e]; e += 1 }
}

/// du[e] = g[e]·x0[e] and dx0[e] += g[e]·u[e] for e in 0..<count: a cross layer's backward step
/// before its product with Wᵀ.
@inline(never)
public func crossBackwardAVX2(_ g: UnsafePointer<Float>, _ x0: UnsafePointer<Float>, _ u: UnsafePointer<Float>,
                              _ du: UnsafeMutablePointer<Float>, _ dx0: UnsafeMutablePointer<Float>, count: Int) {
    var e = 0
    while e + 8 <= count {
        let ge = load(g + e)
        store(ge * load(x0 + e), du + e)
        store(load(dx0 + e) + ge * load(u + e), dx0 + e)
        e += 8
    }
    while e < count { du[e] = g[e] * x0[e]; dx0[e] += g[e] * u[e]; e += 1 }
}

/// x[e] = 0 where x[e] < 0 (the ReLU in place; NaN and −0 stay as they are).
@inline(never)
public func reluAVX2(_ x: UnsafeMutablePointer<Float>, count: Int) {
    var e = 0
    while e + 8 <= count {
        var v = load(x + e)
        v.replace(with: 0, where: v .< 0)
        store(v, x + e)
        e += 8
    }
    while e < count { if x[e] < 0 { x[e] = 0 }; e += 1 }
}

/// d[e] = 0 where input[e] ≤ 0: a gradient masked by the ReLU whose output `input` is.
@inline(never)
public func reluMaskAVX2(_ input: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, count: Int) {
    var e = 0
    while e + 8 <= count {
        var v = load(d + e)
        v.replace(with: 0, where: load(input + e) .<= 0)
        store(v, d + e)
        e += 8
    }
    while e < count { if input[e] <= 0 { d[e] = 0 }; e += 1 }
}
