import Foundation
import FunnelBase

/// Mini-batch optimiser settings for the embedding models.
public struct OptimizerSettings: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case adagrad, adam }
    public var kind = Kind.adagrad
    public var learningRate = 0.05
    public var epsilon = 1e-10
    public var beta1 = 0.9
    public var beta2 = 0.999
    /// When set, the linear weights (one per feature) are trained by FTRL-Proximal on the
    /// batch's summed gradient, as the wide part of Wide & Deep; factors, dense layers and the
    /// bias keep `kind`.
    public var linearFTRL: FTRLSettings? = nil
    /// L2 on the embedding rows and linear weights a batch names: each such row's optimiser step
    /// takes g + λ·p, g being the batch's mean-loss gradient, i.e. the batch's objective carries
    /// (λ/2)·Σ‖p‖² over the distinct rows it names. Rows the batch does not name are left alone.
    /// Linear weights trained by FTRL take FTRL's own L2 instead.
    public var embeddingL2 = 0.0
    /// L2 on every dense parameter (cross and MLP weights and biases), every step: g + λ·p.
    public var denseL2 = 0.0
    /// Inverted dropout on the outputs of the MLP's hidden layers, in training only.
    public var dropout = 0.0
    /// Decoupled decay δ of the tables: after every step every embedding row and linear weight
    /// (not FTRL's), named by the batch or not, is multiplied by 1 − learningRate·δ. Applied lazily:
    /// a row skipped for k steps is multiplied by (1 − learningRate·δ)^k before its next use.
    public var embeddingDecay = 0.0
    public init() {}

    enum CodingKeys: String, CodingKey { case kind, learningRate, epsilon, beta1, beta2, linearFTRL, embeddingL2, denseL2, dropout, embeddingDecay }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decode(Kind.self, forKey: .kind)
        learningRate = try c.decode(Double.self, forKey: .learningRate)
        epsilon = try c.decode(Double.self, forKey: .epsilon)
        beta1 = try c.decode(Double.self, forKey: .beta1)
        beta2 = try c.decode(Double.self, forKey: .beta2)
        // Model files written before FTRL for the linear weights existed have no such key.
        linearFTRL = try c.decodeIfPresent(FTRLSettings.self, forKey: .linearFTRL)
        // Nor do those written before regularisation existed have these.
        embeddingL2 = try c.decodeIfPresent(Double.self, forKey: .embeddingL2) ?? 0
        denseL2 = try c.decodeIfPresent(Double.self, forKey: .denseL2) ?? 0
        dropout = try c.decodeIfPresent(Double.self, forKey: .dropout) ?? 0
        embeddingDecay = try c.decodeIfPresent(Double.self, forKey: .embeddingDecay) ?? 0
    }
}

/// A factorization machine: logit = b + Σ_f w[i_f]·x_f + ½ Σ_k [(Σ_f V[i_f,k]·x_f)² − Σ_f V[i_f,k]²·x_f²],
/// trained on the mean log loss of mini-batches. Generic over the float type so that tests can
/// check it in double precision against a reference; training uses `Float`.
public struct FactorizationMachine<Scalar: BinaryFloatingPoint & Sendable>: Sendable {
    public let slots: Int
    public let factors: Int
    public var bias: Scalar = 0
    public var w: [Scalar]
    public var v: [Scalar]

    public init(slots: Int, factors: Int, seed: UInt64, scale: Double = 0.01) {
        self.slots = slots
        self.factors = factors
        w = [Scalar](repeating: 0, count: slots)
        var rng = SplitMix64(seed: seed)
        // Box–Muller normal draws.
        v = (0..<(slots * factors)).map { _ in Scalar(scale * (-2 * log(rng.open01())).squareRoot() * cos(2 * .pi * rng.open01())) }
    }

    public init(slots: Int, factors: Int, bias: Scalar, w: [Scalar], v: [Scalar]) {
        self.slots = slots
        self.factors = factors
        self.bias = bias
        self.w = w
        self.v = v
    }

    /// The logit of row `r`; fills `sums` (length `factors`) with Σ_f V[i_f,k]·x_f.
    @inline(__always)
    public func logit(_ t: Table, row r: Int, sums: inout [Scalar]) -> Scalar {
        let f = t.fields, k = factors
        var s = bias
        for j in 0..<k { sums[j] = 0 }
        var squares: Scalar = 0
        for q in 0..<f {
            let i = Int(t.indices[r * f + q]), x = Scalar(t.values[r * f + q])
            s += w[i] * x
            let base = i * k
            for j in 0..<k {
                let e = v[base + j] * x
                sums[j] += e
                squares += e * e
            }
        }
        var pair: Scalar = 0
        for j in 0..<k { pair += sums[j] * sums[j] }
        return s + (pair - squares) / 2
    }

    public func logits(_ t: Table) -> [Double] {
        var sums = [Scalar](repeating: 0, count: factors)
        return (0..<t.rows).map { Double(logit(t, row: $0, sums: &sums)) }
    }

    /// Gradients of the mean log loss of a batch: dense buffers reused across batches, with the
    /// list of touched slots so that clearing and updating cost only what the batch used.
    public struct Gradient: Sendable {
        public var bias: Scalar = 0
        public var w: [Scalar]
        public var v: [Scalar]
        public var touched: [Int] = []
        var marked: [Bool]
        public var loss: Double = 0

        public init(slots: Int, factors: Int) {
            w = [Scalar](repeating: 0, count: slots)
            v = [Scalar](repeating: 0, count: slots * factors)
            marked = [Bool](repeating: false, count: slots)
        }

        mutating func clear(factors k: Int) {
            for i in touched {
                w[i] = 0
                for j in 0..<k { v[i * k + j] = 0 }
                marked[i] = false
            }
            touched.removeAll(keepingCapacity: true)
            bias = 0
            loss = 0
        }
    }

    public func gradient(_ t: Table, rows: Range<Int>) -> Gradient {
        var g = Gradient(slots: slots, factors: factors)
        gradient(t, rows: rows, into: &g)
        return g
    }

    /// Fills `g` (cleared first) with the gradients of the mean log loss over `rows`.
    public func gradient(_ t: Table, rows: Range<Int>, into g: inout Gradient) {
        let f = t.fields, k = factors
        g.clear(factors: k)
        let n = Scalar(rows.count)
        var sums = [Scalar](repeating: 0, count: k)
        for r in rows {
            let z = logit(t, row: r, sums: &sums)
            let zd = Double(z)
            let p = Scalar(1 / (1 + exp(-zd)))
            let y = Scalar(t.labels[r])
            g.loss += max(zd, 0) - zd * Double(y) + log1p(exp(-abs(zd)))
            let d = (p - y) / n
            g.bias += d
            for q in 0..<f {
                let i = Int(t.indices[r * f + q]), x = Scalar(t.values[r * f + q])
                if !g.marked[i] { g.marked[i] = true; g.touched.append(i) }
                g.w[i] += d * x
                let base = i * k
                for j in 0..<k { g.v[base + j] += d * (x * sums[j] - v[base + j] * x * x) }
            }
        }
        g.loss /= Double(rows.count)
    }
}

/// Optimiser state for a factorization machine (per-parameter accumulators, PyTorch semantics:
/// Adagrad p −= lr·g/(√Σg² + ε); Adam with bias correction by the optimiser's step count). Only
/// the rows a batch touches are updated, as PyTorch's SparseAdam and sparse Adagrad do.
public struct FMOptimizer<Scalar: BinaryFloatingPoint & Sendable> {
    public let settings: OptimizerSettings
    var wState: AdaptiveState<Scalar>, vState: AdaptiveState<Scalar>, biasState: AdaptiveState<Scalar>
    let factors: Int
    var steps = 0
    var decay: RowDecay

    public init(slots: Int, factors: Int, settings: OptimizerSettings) {
        self.settings = settings
        self.factors = factors
        decay = RowDecay(slots: slots, settings: settings)
        wState = AdaptiveState(rows: slots, width: 1, settings: settings, ftrl: settings.linearFTRL, l2: settings.embeddingL2)
        vState = AdaptiveState(rows: slots, width: factors, settings: settings, l2: settings.embeddingL2)
        biasState = AdaptiveState(rows: 1, width: 1, settings: settings)
    }

    /// Brings the rows that `rows` of `t` name up to date with the decay of the steps they skipped
    /// (before their gradient is taken).
    public mutating func catchUp(_ m: inout FactorizationMachine<Scalar>, _ t: Table, rows: Range<Int>) {
        let cells = (rows.lowerBound * t.fields)..<(rows.upperBound * t.fields)
        decay.bringUp(cells.lazy.map { Int(t.indices[$0]) }, to: steps, v: &m.v, w: &m.w, width: factors)
    }

    /// Brings every row up to date with the decay (the model is then exact; after training).
    public mutating func settle(_ m: inout FactorizationMachine<Scalar>) {
        decay.bringUp(0..<m.slots, to: steps, v: &m.v, w: &m.w, width: factors)
    }

    public mutating func step(_ m: inout FactorizationMachine<Scalar>, _ g: FactorizationMachine<Scalar>.Gradient, rows: Int) {
        // The bias keeps its own state.
        steps += 1
        let c = AdaptiveState<Scalar>.corrections(settings, step: steps, rows: rows)
        biasState.update(row: 0, &m.bias, g.bias, c)
        let k = factors
        m.w.withUnsafeMutableBufferPointer { w in
            m.v.withUnsafeMutableBufferPointer { v in
                g.w.withUnsafeBufferPointer { gw in
                    g.v.withUnsafeBufferPointer { gv in
                        for i in g.touched {
                            wState.update(row: i, w.baseAddress! + i, gw.baseAddress! + i, c)
                            vState.update(row: i, v.baseAddress! + i * k, gv.baseAddress! + i * k, c)
                        }
                    }
                }
            }
        }
        // This step's decay of the rows just updated.
        decay.bringUp(g.touched, to: steps, v: &m.v, w: &m.w, width: k)
    }
}

extension FactorizationMachine where Scalar == Float {
    /// Trains on `table` in order, `batchSize` rows per step, for `epochs` passes; calls `onEpoch`
    /// with the epoch number and its mean training log loss. (Here, inside the module, the generic
    /// code is specialised for `Float`.)
    public mutating func train(_ table: Table, optimizer settings: OptimizerSettings, batchSize: Int, epochs: Int,
                               onEpoch: (Int, Double) -> Void) {
        var optimizer = FMOptimizer<Float>(slots: slots, factors: factors, settings: settings)
        var g = Gradient(slots: slots, factors: factors)
        for e in 1...epochs { onEpoch(e, epoch(table, optimizer: &optimizer, batchSize: batchSize, gradient: &g)) }
    }

    /// One pass over `table` in order; returns the mean training log loss.
    public mutating func epoch(_ table: Table, optimizer: inout FMOptimizer<Float>, batchSize: Int, gradient g: inout Gradient) -> Double {
        var loss = 0.0
        var start = 0
        while start < table.rows {
            let end = min(start + batchSize, table.rows)
            optimizer.catchUp(&self, table, rows: start..<end)
            gradient(table, rows: start..<end, into: &g)
            loss += g.loss * Double(end - start)
            optimizer.step(&self, g, rows: end - start)
            start = end
        }
        optimizer.settle(&self)
        return loss / Double(max(table.rows, 1))
    }
}

/// The tables' decoupled decay (`OptimizerSettings.embeddingDecay`), applied lazily: `applied[i]`
/// counts the steps whose decay slot i has taken, and a slot is brought up to the optimiser's step
/// count by one multiplication by (1 − lr·δ)^k before it is read or after it is updated. Linear
/// weights trained by FTRL are not decayed (FTRL's weights follow from its own state).
struct RowDecay: Sendable {
    let factor: Double
    let decaysLinear: Bool
    var applied: [Int32]
    var enabled: Bool { factor != 1 }

    init(slots: Int, settings: OptimizerSettings) {
        factor = 1 - settings.learningRate * settings.embeddingDecay
        decaysLinear = settings.linearFTRL == nil
        applied = factor != 1 ? [Int32](repeating: 0, count: slots) : []
    }

    /// `bringUp` for every slot of `slots`, on the embedding table `v` (rows of `width`) and the
    /// linear weights `w` (empty when the model has none).
    mutating func bringUp<Scalar: BinaryFloatingPoint, Slots: Sequence<Int>>(_ slots: Slots, to steps: Int, v: inout [Scalar], w: inout [Scalar],
                                                                            width: Int) {
        guard enabled else { return }
        w.withUnsafeMutableBufferPointer { w in
            v.withUnsafeMutableBufferPointer { v in
                for i in slots { bringUp(i, to: steps, row: v.baseAddress! + i * width, width: width, linear: w.isEmpty ? nil : w.baseAddress! + i) }
            }
        }
    }

    /// Multiplies slot `i`'s embedding row (and linear weight, when given and decayed) by the decay
    /// of the steps up to `steps` it has not yet taken.
    @inline(__always)
    mutating func bringUp<Scalar: BinaryFloatingPoint>(_ i: Int, to steps: Int, row: UnsafeMutablePointer<Scalar>, width: Int,
                                                       linear: UnsafeMutablePointer<Scalar>?) {
        let k = steps - Int(applied[i])
        guard k > 0 else { return }
        applied[i] = Int32(truncatingIfNeeded: steps)
        let f = Scalar(k == 1 ? factor : pow(factor, Double(k)))
        for j in 0..<width { row[j] *= f }
        if decaysLinear, let linear { linear.pointee *= f }
    }
}
