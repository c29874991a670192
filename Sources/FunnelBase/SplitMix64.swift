import Foundation

/// SplitMix64: the small seeded generator behind Funnel's bootstraps, model initialisation and
/// downsampling (the same seed gives the same draws on every platform).
public struct SplitMix64: Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in (0, 1).
    public mutating func open01() -> Double { (Double(next() >> 11) + 0.5) * 0x1p-53 }

    /// A Poisson(1) draw (product of uniforms until it falls below e⁻¹).
    public mutating func poisson1() -> Int {
        let limit = exp(-1.0)
        var k = 0, prod = unit()
        while prod > limit { k += 1; prod *= unit() }
        return k
    }
}
