import Foundation

/// Logistic regression trained by FTRL-Proximal (per-coordinate learning rates, L1 and L2),
/// online over the rows in order, for one or more epochs. The bias is one more coordinate.
public struct FTRLSettings: Codable, Sendable, Equatable {
    public var alpha = 0.05
    public var beta = 1.0
    public var l1 = 1.0
    public var l2 = 1.0
    public var epochs = 1
    public init() {}

    /// The FTRL-Proximal weight of a coordinate with state (z, n): 0 when |z| ≤ λ1, else
    /// −(z − sign(z)·λ1)/((β + √n)/α + λ2).
    @inline(__always)
    func weight<S: BinaryFloatingPoint>(z: S, n: S) -> S {
        let l1 = S(self.l1)
        if abs(z) <= l1 { return 0 }
        return -(z - (z < 0 ? -l1 : l1)) / ((S(beta) + n.squareRoot()) / S(alpha) + S(l2))
    }

    /// Adds gradient `g` of a coordinate whose current weight is `w` to its state (z, n).
    @inline(__always)
    func accumulate<S: BinaryFloatingPoint>(z: inout S, n: inout S, gradient g: S, weight w: S) {
        let sigma = ((n + g * g).squareRoot() - n.squareRoot()) / S(alpha)
        z += g - sigma * w
        n += g * g
    }
}

public struct FTRLTrainer {
    public let settings: FTRLSettings
    public let slots: Int
    var z: [Double]
    var n: [Double]

    public init(slots: Int, settings: FTRLSettings) {
        self.settings = settings
        self.slots = slots
        z = [Double](repeating: 0, count: slots + 1)
        n = [Double](repeating: 0, count: slots + 1)
    }

    /// The weight of coordinate `i` from its (z, n) state.
    @inline(__always)
    func weight(_ i: Int) -> Double { settings.weight(z: z[i], n: n[i]) }

    /// One pass over `table`; returns the mean training log loss of the pass (progressive validation).
    @discardableResult
    public mutating func pass(_ table: Table) -> Double {
        let f = table.fields
        var loss = 0.0
        var w = [Double](repeating: 0, count: f)
        table.indices.withUnsafeBufferPointer { idx in
            table.values.withUnsafeBufferPointer { val in
                for r in 0..<table.rows {
                    let base = r * f
                    let wb = weight(slots)
                    var s = wb
                    for k in 0..<f {
                        w[k] = weight(Int(idx[base + k]))
                        s += w[k] * Double(val[base + k])
                    }
                    let p = 1 / (1 + exp(-max(min(s, 35), -35)))
                    let y = Double(table.labels[r])
                    loss -= y > 0.5 ? log(max(p, 1e-15)) : log(max(1 - p, 1e-15))
                    let g = p - y
                    update(slots, g, wb)
                    for k in 0..<f { update(Int(idx[base + k]), g * Double(val[base + k]), w[k]) }
                }
            }
        }
        return loss / Double(max(table.rows, 1))
    }

    @inline(__always)
    mutating func update(_ i: Int, _ g: Double, _ w: Double) { settings.accumulate(z: &z[i], n: &n[i], gradient: g, weight: w) }

    /// Final weights (slots, then the bias).
    public func weights() -> [Float] { (0...slots).map { Float(weight($0)) } }
}
