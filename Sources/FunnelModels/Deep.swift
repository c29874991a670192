import CPrefetch
import Foundation
import FunnelKernelsAVX2
import FunnelBase

/// The two embedding-plus-network click models.
public enum DeepKind: String, Codable, Sendable, CaseIterable {
    /// DeepFM: logit = b + Σ_f w[i_f]·x_f + FM pairwise term on the embeddings + MLP(embeddings).
    case deepfm
    /// DCN-v2 (stacked): x_{l+1} = x_0 ⊙ (W_l·x_l + b_l) + x_l for `crossLayers` full-rank layers,
    /// then the MLP on the last cross output; logit = MLP output (plus b + Σ_f w[i_f]·x_f when `wide`).
    case dcnv2
}

/// Shapes of a DeepFM or DCN-v2 model. Every row gives `fields` (index, value) pairs; field f's
/// embedding is V[i_f]·x_f, and the network input is their concatenation (width fields·dim).
public struct DeepArchitecture: Codable, Sendable, Equatable {
    public var kind: DeepKind
    public var fields: Int
    public var dim: Int
    /// Hidden layer widths of the MLP (ReLU); a last linear layer maps to one output.
    public var hidden: [Int]
    /// DCN-v2 only.
    public var crossLayers: Int
    /// DCN-v2 only: a wide part, per-slot linear weights and a bias added to the logit (as in
    /// Wide & Deep), so that the long tail of values can be fitted sparsely (e.g. by FTRL).
    public var wide: Bool
    /// Towers over the one shared embedding (1 for the click models; 2 or 3 for the conversion
    /// models, `ConversionObjective`): each has cross layers and an MLP of its own, ending in its
    /// own logit. Models with more than one tower are DCN-v2 without a wide part: no linear
    /// weights and no FM term, which would belong to no tower.
    public var towers: Int
    /// With several towers: each tower reads an embedding table of its own (tower k's rows after
    /// tower k − 1's), so that no tower's loss shapes another's inputs (the naive conversion
    /// model beside its click model). Otherwise the towers share one table.
    public var separateEmbeddings: Bool

    public init(kind: DeepKind, fields: Int, dim: Int, hidden: [Int], crossLayers: Int = 0, wide: Bool = false, towers: Int = 1,
                separateEmbeddings: Bool = false) {
        self.kind = towers > 1 ? .dcnv2 : kind
        self.fields = fields
        self.dim = dim
        self.hidden = hidden
        self.crossLayers = self.kind == .dcnv2 ? crossLayers : 0
        self.wide = self.kind == .dcnv2 && wide && towers == 1
        self.towers = max(1, towers)
        self.separateEmbeddings = separateEmbeddings && towers > 1
    }

    enum CodingKeys: String, CodingKey { case kind, fields, dim, hidden, crossLayers, wide, towers, separateEmbeddings }

    /// Model files written before the wide part existed have no `wide` key: they decode as `false`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(kind: try c.decode(DeepKind.self, forKey: .kind), fields: try c.decode(Int.self, forKey: .fields),
                  dim: try c.decode(Int.self, forKey: .dim), hidden: try c.decode([Int].self, forKey: .hidden),
                  crossLayers: try c.decode(Int.self, forKey: .crossLayers), wide: try c.decodeIfPresent(Bool.self, forKey: .wide) ?? false,
                  towers: try c.decodeIfPresent(Int.self, forKey: .towers) ?? 1,
                  separateEmbeddings: try c.decodeIfPresent(Bool.self, forKey: .separateEmbeddings) ?? false)
    }

    /// `wide` and `towers` are written only when set, so click-model files keep their earlier form.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        try c.encode(fields, forKey: .fields)
        try c.encode(dim, forKey: .dim)
        try c.encode(hidden, forKey: .hidden)
        try c.encode(crossLayers, forKey: .crossLayers)
        if wide { try c.encode(wide, forKey: .wide) }
        if towers > 1 { try c.encode(towers, forKey: .towers) }
        if separateEmbeddings { try c.encode(separateEmbeddings, forKey: .separateEmbeddings) }
    }

    public var width: Int { fields * dim }
    /// Embedding tables: one per tower with `separateEmbeddings`, else one.
    public var embeddingTables: Int { separateEmbeddings ? towers : 1 }
    /// Whether the model has per-slot linear weights and a bias (DeepFM, and DCN-v2 with `wide`).
    public var hasLinear: Bool { kind == .deepfm || wide }
    /// Whether the model has the FM pairwise term (DeepFM).
    public var hasFM: Bool { kind == .deepfm }

    /// (inputs, outputs) of the MLP's layers; the last has one output.
    public var mlpShapes: [(inputs: Int, outputs: Int)] {
        var shapes: [(Int, Int)] = []
        var inputs = width
        for h in hidden { shapes.append((inputs, h)); inputs = h }
        shapes.append((inputs, 1))
        return shapes
    }

    /// Dense parameters of one tower, in order: cross layer l's W (width × width, W[i·width + o])
    /// then b (width), then each MLP layer's W (inputs × outputs, W[i·outputs + o]) then b (outputs).
    public var towerDenseCount: Int {
        crossLayers * (width * width + width) + mlpShapes.reduce(0) { $0 + $1.inputs * $1.outputs + $1.outputs }
    }
    /// Dense parameters of all towers, tower 0's first.
    public var denseCount: Int { towers * towerDenseCount }

    /// Offsets of each dense layer's weight matrix and bias in the dense parameters.
    struct Layer { var inputs: Int; var outputs: Int; var weight: Int; var bias: Int }
    func crossOffsets(tower: Int) -> [Layer] {
        let base = tower * towerDenseCount
        return (0..<crossLayers).map { l in
            let o = base + l * (width * width + width)
            return Layer(inputs: width, outputs: width, weight: o, bias: o + width * width)
        }
    }
    func mlpOffsets(tower: Int) -> [Layer] {
        var o = tower * towerDenseCount + crossLayers * (width * width + width)
        return mlpShapes.map { s in
            defer { o += s.inputs * s.outputs + s.outputs }
            return Layer(inputs: s.inputs, outputs: s.outputs, weight: o, bias: o + s.inputs * s.outputs)
        }
    }
    /// Tower 0's layers (the click models' only tower).
    var crossOffsets: [Layer] { crossOffsets(tower: 0) }
    var mlpOffsets: [Layer] { mlpOffsets(tower: 0) }
    /// Every dense layer of every tower, in parameter order.
    var allLayers: [Layer] { (0..<towers).flatMap { crossOffsets(tower: $0) + mlpOffsets(tower: $0) } }
}

/// A DeepFM or DCN-v2 model: per-slot linear weights `w` and a bias (DeepFM, and DCN-v2 with a wide
/// part; otherwise DCN-v2's last layer carries its bias), embeddings `v` (slots × dim) and the dense layers. Generic over the float type so that tests run it in double
/// precision against PyTorch; training uses `Float`.
public struct DeepModel<Scalar: BinaryFloatingPoint & SIMDScalar & Sendable>: Sendable {
    public let architecture: DeepArchitecture
    public let slots: Int
    public var bias: Scalar = 0
    public var w: [Scalar]
    public var v: [Scalar]
    public var dense: [Scalar]

    /// Embeddings ~ N(0, scale²); dense weights and biases ~ U(−1/√inputs, 1/√inputs) (the usual
    /// fully-connected initialisation); linear weights and the bias start at 0.
    /// `slots`: the features' slots; a model with separate tower embeddings has that many rows
    /// per tower (`self.slots` counts them all).
    public init(architecture a: DeepArchitecture, slots featureSlots: Int, seed: UInt64, scale: Double = 0.01) {
        architecture = a
        let slots = featureSlots * a.embeddingTables
        self.slots = slots
        w = [Scalar](repeating: 0, count: a.hasLinear ? slots : 0)
        var rng = SplitMix64(seed: seed)
        v = (0..<(slots * a.dim)).map { _ in Scalar(scale * (-2 * log(rng.open01())).squareRoot() * cos(2 * .pi * rng.open01())) }
        dense = [Scalar](repeating: 0, count: a.denseCount)
        for layer in a.allLayers {
            let bound = 1 / Double(layer.inputs).squareRoot()
            for j in 0..<(layer.inputs * layer.outputs) { dense[layer.weight + j] = Scalar(bound * (2 * rng.unit() - 1)) }
            for j in 0..<layer.outputs { dense[layer.bias + j] = Scalar(bound * (2 * rng.unit() - 1)) }
        }
    }

    /// Sets the output's bias to `logit`: the bias of a model with one, else the last MLP layer's.
    public mutating func startOutput(at logit: Scalar) {
        if architecture.hasLinear {
            bias = logit
        } else {
            startOutput(tower: 0, at: logit)
        }
    }

    /// Sets tower `tower`'s last MLP layer's bias to `logit` (a model without linear weights).
    public mutating func startOutput(tower: Int, at logit: Scalar) {
        if let last = architecture.mlpOffsets(tower: tower).last { dense[last.bias] = logit }
    }

    public init(architecture: DeepArchitecture, slots: Int, bias: Scalar, w: [Scalar], v: [Scalar], dense: [Scalar]) {
        self.architecture = architecture
        self.slots = slots
        self.bias = bias
        self.w = w
        self.v = v
        self.dense = dense
    }

    /// Logits of every row of `table`, in blocks over `threads` threads: tower 0's (a click
    /// model's only tower, a conversion model's click tower). A block of 256 rows
    /// writes about 2 MB of activations in DCN-v2 (312 wide, two cross layers, 256 and 128 units),
    /// which stay in a core's second-level cache from one layer to the next; blocks of 2,048 did
    /// not, and scored DCN-v2 about a fifth slower. Rows are computed alone, so the block size
    /// changes no logit.
    @_specialize(exported: true, where Scalar == Float)
    public func logits(_ table: Table, threads: Int = 1) -> [Double] {
        towerLogits(table, threads: threads)[0]
    }

    /// Every tower's logits of every row of `table` (tower k's in element k), as `logits` computes them.
    @_specialize(exported: true, where Scalar == Float)
    public func towerLogits(_ table: Table, threads: Int = 1) -> [[Double]] {
        let towers = architecture.towers
        var out = [[Double]](repeating: [Double](repeating: 0, count: table.rows), count: towers)
        let block = 256
        let blocks = (table.rows + block - 1) / block
        let slotsOut = ResultSlots<[[Double]]>(count: blocks)
        let parts = max(1, min(threads, blocks))
        // The weights' panels, packed once for every block (each block would otherwise pack them).
        let packed = Scalar.self == Float.self && blocks > 1 && !dense.isEmpty ? PackedWeights(architecture, kernel: MatrixKernel.active) : nil
        if let packed { dense.withUnsafeBufferPointer { d in packed.pack(float(reading: d.baseAddress!)) } }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let ws = (0..<towers).map { _ in DeepWorkspace<Scalar>(architecture, rows: max(1, min(block, table.rows))) }
            var b = part
            while b < blocks {
                let rows = (b * block)..<min(table.rows, (b + 1) * block)
                forwardTowers(table, rows: rows, ws, packed: packed)
                slotsOut.set(b, ws.map { w in (0..<rows.count).map { Double(w.logit[$0]) } })
                b += parts
            }
        }
        for (b, values) in slotsOut.values().enumerated() {
            for k in 0..<towers {
                for (j, x) in values[k].enumerated() { out[k][b * block + j] = x }
            }
        }
        return out
    }

    /// Forward pass over `rows`, keeping what the backward pass needs in `ws`; the weights' panels
    /// from `packed` when given (a `Float` model on the fused kernel, scoring many blocks).
    /// With `dropout` (training), each hidden unit's output is kept with probability 1 − rate and
    /// then divided by 1 − rate; which units are kept depends only on the dropout's key, the row's
    /// index in the table, the layer and the unit, so the thread count changes nothing.
    func forward(_ t: Table, rows: Range<Int>, _ ws: DeepWorkspace<Scalar>, packed: PackedWeights? = nil, dropout: Dropout? = nil) {
        embed(t, rows: rows, ws)
        network(rows: rows, ws, tower: 0, packed: packed, dropout: dropout)
    }

    /// The forward pass of every tower over `rows`: tower k's activations and logits in `ws[k]`.
    /// The embedding is looked up once, into `ws[0]`, and copied to the other towers' inputs.
    func forwardTowers(_ t: Table, rows: Range<Int>, _ ws: [DeepWorkspace<Scalar>], packed: PackedWeights? = nil, dropout: Dropout? = nil) {
        if architecture.separateEmbeddings {
            for k in 0..<ws.count {
                embed(t, rows: rows, ws[k], table: k)
                network(rows: rows, ws[k], tower: k, packed: packed, dropout: dropout)
            }
            return
        }
        embed(t, rows: rows, ws[0])
        let n = rows.count, width = architecture.width
        for k in 1..<max(1, ws.count) {
            ws[k].x[0].update(from: ws[0].x[0], count: n * width)
            ws[k].logit.update(repeating: 0, count: n)
        }
        for k in 0..<ws.count { network(rows: rows, ws[k], tower: k, packed: packed, dropout: dropout) }
    }

    /// The network's input X_0 (the rows' embeddings scaled by their values) into `ws`, and the
    /// logits' linear and FM parts (0 for a model without them).
    /// `table`: which embedding table (a tower's own, with separate embeddings).
    func embed(_ t: Table, rows: Range<Int>, _ ws: DeepWorkspace<Scalar>, table: Int = 0) {
        let a = architecture, f = t.fields, k = a.dim, width = a.width
        let x0 = ws.x[0]
        let first = table * (slots / a.embeddingTables)
        v.withUnsafeBufferPointer { vp in
            w.withUnsafeBufferPointer { wp in
                let vt = vp.baseAddress! + first * k
                for (j, r) in rows.enumerated() {
                    t.prefetchAhead(of: r, in: rows, vt, stride: k, forWriting: false)
                    let row = x0 + j * width
                    var linear = bias
                    for q in 0..<f {
                        let i = Int(t.indices[r * f + q]), x = Scalar(t.values[r * f + q])
                        if a.hasLinear { linear += wp[i] * x }
                        scale(vt + i * k, by: x, into: row + q * k, count: k)
                    }
                    if a.hasFM {
                        // FM pairwise term: ½ Σ_c [(Σ_f e_fc)² − Σ_f e_fc²].
                        let sums = ws.fmSums + j * k
                        var squares: Scalar = 0
                        for c in 0..<k { sums[c] = 0 }
                        for q in 0..<f {
                            for c in 0..<k { let e = row[q * k + c]; sums[c] += e; squares += e * e }
                        }
                        var pair: Scalar = 0
                        for c in 0..<k { pair += sums[c] * sums[c] }
                        ws.logit[j] = linear + (pair - squares) / 2
                    } else {
                        ws.logit[j] = a.hasLinear ? linear : 0
                    }
                }
            }
        }
    }

    /// Tower `tower`'s cross layers and MLP on the input X_0 in `ws`, its output added to `ws.logit`.
    /// Dropout keys tower k's hidden layer m as layer 64·k + m.
    func network(rows: Range<Int>, _ ws: DeepWorkspace<Scalar>, tower: Int, packed: PackedWeights?, dropout: Dropout?) {
        let a = architecture, width = a.width, n = rows.count
        let x0 = ws.x[0]
        dense.withUnsafeBufferPointer { dp in
            let d = dp.baseAddress!
            // Cross layers: U_l = X_l·W_l + b_l; X_{l+1} = X_0 ⊙ U_l + X_l.
            for (l, layer) in a.crossOffsets(tower: tower).enumerated() {
                let xl = ws.x[l], u = ws.u[l], next = ws.x[l + 1]
                affine(xl, n, layer, d, u, packed)
                if avx2Passes(Scalar.self) {
                    crossForwardAVX2(float(x0), float(u), float(xl), float(next), count: n * width)
                } else {
                    for e in 0..<(n * width) { next[e] = x0[e] * u[e] + xl[e] }
                }
            }
            // MLP with ReLU between layers.
            var input = ws.x[a.crossLayers]
            let layers = a.mlpOffsets(tower: tower)
            for (m, layer) in layers.enumerated() {
                let out = ws.h[m]
                affine(input, n, layer, d, out, packed)
                if m + 1 < layers.count {
                    if avx2Passes(Scalar.self) {
                        reluAVX2(float(out), count: n * layer.outputs)
                    } else {
                        for e in 0..<(n * layer.outputs) where out[e] < 0 { out[e] = 0 }
                    }
                    if let dropout { dropout.apply(out, rows: rows, layer: 64 * tower + m, width: layer.outputs) }
                }
                input = out
            }
            for j in 0..<n { ws.logit[j] += input[j] }
        }
    }

    /// out (n × outputs) = input (n × inputs) · W + b, W's panels from `packed` when given.
    @inline(__always)
    func affine(_ input: UnsafeMutablePointer<Scalar>, _ n: Int, _ layer: DeepArchitecture.Layer,
                _ d: UnsafePointer<Scalar>, _ out: UnsafeMutablePointer<Scalar>, _ packed: PackedWeights?) {
        let ni = layer.inputs, no = layer.outputs
        let b = d + layer.bias
        if let packed {
            fusedGemm(float(input), rowStride: ni, innerStride: 1, panels: packed.forward(layer), float(out), rows: n, inner: ni, columns: no,
                      wide: packed.wide, accumulate: false, bias: float(reading: b))
        } else {
            gemm(input, rowStride: ni, innerStride: 1, d + layer.weight, out, rows: n, inner: ni, columns: no, accumulate: false, bias: b)
        }
    }

    /// The gradients of Σ_r (log loss of row r) / `divisor` over `rows`, using the forward pass in
    /// `ws`: written into `g`'s dense gradient (every element), added to its touched rows, bias
    /// and loss (which `clear()` resets).
    /// `dropout`: the rate of the forward pass's dropout (whose dropped units are the zeros it left).
    func backward(_ t: Table, rows: Range<Int>, divisor: Int, _ ws: DeepWorkspace<Scalar>, dropout: Scalar = 0, into g: DeepGradient<Scalar>) {
        dense.withUnsafeBufferPointer { d in backward(t, rows: rows, divisor: divisor, ws, weights: d.baseAddress!, dropout: dropout, into: g) }
    }

    private func backward(_ t: Table, rows: Range<Int>, divisor: Int, _ ws: DeepWorkspace<Scalar>, weights: UnsafePointer<Scalar>,
                          dropout: Scalar, into g: DeepGradient<Scalar>) {
        let scale = 1 / Scalar(divisor)
        // dL/dlogit per row.
        let dz = ws.dz
        for (j, r) in rows.enumerated() {
            let z = Double(ws.logit[j]), y = Double(t.labels[r])
            g.loss += max(z, 0) - z * y + log1p(exp(-abs(z)))
            dz[j] = (Scalar(1 / (1 + exp(-z))) - Scalar(y)) * scale
            if architecture.hasLinear { g.bias += dz[j] }
        }
        networkBackward(rows.count, ws, tower: 0, weights: weights, dropout: dropout, into: g.dense)
        scatter(t, rows: rows, ws, into: g)
    }

    /// The backward pass of every tower, whose dL/dlogit per row the caller has put in `ws[k].dz`:
    /// each tower's dense gradient into `g`, and the embedding gradient of their summed inputs'
    /// gradients (tower 0's, then 1's, …) added to `g`'s touched rows.
    func backwardTowers(_ t: Table, rows: Range<Int>, _ ws: [DeepWorkspace<Scalar>], dropout: Scalar = 0, into g: DeepGradient<Scalar>) {
        let n = rows.count, width = architecture.width
        dense.withUnsafeBufferPointer { d in
            for k in 0..<ws.count { networkBackward(n, ws[k], tower: k, weights: d.baseAddress!, dropout: dropout, into: g.dense) }
        }
        if architecture.separateEmbeddings {
            for k in 0..<ws.count { scatter(t, rows: rows, ws[k], table: k, into: g) }
            return
        }
        let sum = ws[0].dx0
        for k in 1..<max(1, ws.count) {
            let other = ws[k].dx0
            for e in 0..<(n * width) { sum[e] += other[e] }
        }
        scatter(t, rows: rows, ws[0], into: g)
    }

    /// Tower `tower`'s backward pass from dL/dlogit in `ws.dz`: its dense gradient written into
    /// `gd` (every element of the tower's layers), dL/dX_0 into `ws.dx0`.
    private func networkBackward(_ n: Int, _ ws: DeepWorkspace<Scalar>, tower: Int, weights: UnsafePointer<Scalar>, dropout: Scalar,
                                 into gd: UnsafeMutablePointer<Scalar>) {
        let a = architecture, width = a.width
        let dz = ws.dz
        let layers = a.mlpOffsets(tower: tower)
        // MLP backward: dIn = dOut·Wᵀ (masked by the ReLU of the input layer), dW += inᵀ·dOut.
        var dOut = dz
        for m in stride(from: layers.count - 1, through: 0, by: -1) {
            let layer = layers[m]
            let input = m == 0 ? ws.x[a.crossLayers] : ws.h[m - 1]
            let dIn = m == 0 ? ws.dx : (m % 2 == 0 ? ws.dh0 : ws.dh1)
            accumulate(input, dOut, n, layer, gd, weights, dIn)
            if m > 0 {
                if avx2Passes(Scalar.self) {
                    reluMaskAVX2(float(input), float(dIn), count: n * layer.inputs)
                } else {
                    for e in 0..<(n * layer.inputs) where input[e] <= 0 { dIn[e] = 0 }
                }
                // A kept unit's output was divided by 1 − rate; a dropped one is 0, masked above.
                if dropout > 0 {
                    let keep = 1 / (1 - dropout)
                    for e in 0..<(n * layer.inputs) { dIn[e] *= keep }
                }
            }
            dOut = dIn
        }
        // Cross backward, from the last layer: G = dX_{l+1};
        // dU = G ⊙ X_0, dX_0 += G ⊙ U_l, dW_l += X_lᵀ·dU, db_l += Σ dU, dX_l = G + dU·W_lᵀ.
        let x0 = ws.x[0], dx0 = ws.dx0
        if a.crossLayers > 0 {
            for e in 0..<(n * width) { dx0[e] = 0 }
            let grad = ws.dx
            for (l, layer) in a.crossOffsets(tower: tower).enumerated().reversed() {
                let u = ws.u[l], du = ws.du
                if avx2Passes(Scalar.self) {
                    crossBackwardAVX2(float(grad), float(x0), float(u), float(du), float(dx0), count: n * width)
                } else {
                    for e in 0..<(n * width) { du[e] = grad[e] * x0[e]; dx0[e] += grad[e] * u[e] }
                }
                // dX_l = G + dU·Wᵀ, added to G in place.
                accumulate(ws.x[l], du, n, layer, gd, weights, grad, addingToInput: true)
            }
            for e in 0..<(n * width) { dx0[e] += grad[e] }
        } else {
            for e in 0..<(n * width) { dx0[e] = ws.dx[e] }
        }
    }

    /// The embedding gradients from dL/dX_0 in `ws.dx0`, and those of the linear weights and the
    /// FM term (from `ws.dz`) where the model has them, added to `g`'s touched rows.
    private func scatter(_ t: Table, rows: Range<Int>, _ ws: DeepWorkspace<Scalar>, table: Int = 0, into g: DeepGradient<Scalar>) {
        let a = architecture, f = t.fields, k = a.dim, width = a.width
        let x0 = ws.x[0], dx0 = ws.dx0, dz = ws.dz
        let first = table * (slots / a.embeddingTables)
        do {
            for (j, r) in rows.enumerated() {
                t.prefetchAhead(of: r, in: rows, UnsafePointer(g.position + first), stride: 1, forWriting: true)
                let row = x0 + j * width, drow = dx0 + j * width, d = dz[j]
                let sums = ws.fmSums + j * k
                for q in 0..<f {
                    let i = Int(t.indices[r * f + q]), x = Scalar(t.values[r * f + q])
                    let l = g.mark(first + i)
                    let gv = g.v + l * k
                    if a.hasLinear { g.w[l] += d * x }
                    if a.hasFM {
                        for c in 0..<k { gv[c] += (drow[q * k + c] + d * (sums[c] - row[q * k + c])) * x }
                    } else {
                        for c in 0..<k { gv[c] += drow[q * k + c] * x }
                    }
                }
            }
        }
    }

    /// dW = inputᵀ·dOut, db = Σ_r dOut (both written, not added: each is the layer's whole gradient
    /// over the rows), dIn = dOut·Wᵀ (`w` + layer.weight holds W, inputs × outputs, which the
    /// product reads as Wᵀ in place), or dIn += dOut·Wᵀ when `addingToInput`.
    @inline(__always)
    func accumulate(_ input: UnsafeMutablePointer<Scalar>, _ dOut: UnsafeMutablePointer<Scalar>, _ n: Int,
                    _ layer: DeepArchitecture.Layer, _ gd: UnsafeMutablePointer<Scalar>, _ w: UnsafePointer<Scalar>,
                    _ dIn: UnsafeMutablePointer<Scalar>, addingToInput: Bool = false) {
        let ni = layer.inputs, no = layer.outputs
        let gb = gd + layer.bias
        // Σ from zero in row order (0 + the first row, then the others added).
        for c in 0..<no { gb[c] = 0 }
        for r in 0..<n {
            let dy = dOut + r * no
            for c in 0..<no { gb[c] += dy[c] }
        }
        gemm(input, rowStride: 1, innerStride: ni, dOut, gd + layer.weight, rows: ni, inner: n, columns: no, accumulate: false)
        gemm(dOut, rowStride: no, innerStride: 1, w + layer.weight, dIn, rows: n, inner: no, columns: ni, bTransposed: true,
             accumulate: addingToInput)
    }

    /// Gradients of the mean log loss over `rows` (one thread), for tests and small batches.
    public func gradient(_ t: Table, rows: Range<Int>, dropout: Dropout? = nil) -> DeepGradient<Scalar> {
        let g = DeepGradient<Scalar>(architecture, slots: slots)
        let ws = DeepWorkspace<Scalar>(architecture, rows: rows.count)
        forward(t, rows: rows, ws, dropout: dropout)
        backward(t, rows: rows, divisor: rows.count, ws, dropout: Scalar(dropout?.rate ?? 0), into: g)
        g.loss /= Double(rows.count)
        return g
    }
}

/// Whether the layers' elementwise passes run as `FunnelKernelsAVX2`'s AVX2 loops: for `Float`,
/// when `MatrixKernel.active` has the fused kernel (always `.baseline` off x86-64). They give the
/// baseline loops' results to the bit either way.
@inline(__always)
func avx2Passes<S>(_: S.Type) -> Bool { S.self == Float.self && MatrixKernel.active.fused }

/// `p` as a pointer to `Float`, for a `Scalar` that `avx2Passes` has found to be `Float`.
@inline(__always)
func float<S>(_ p: UnsafeMutablePointer<S>) -> UnsafeMutablePointer<Float> { UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self) }
@inline(__always)
func float<S>(reading p: UnsafePointer<S>) -> UnsafePointer<Float> { UnsafeRawPointer(p).assumingMemoryBound(to: Float.self) }

/// out[c] = source[c]·x for c in 0..<count: eight at a time in a vector, the rest one by one (the
/// same products either way). The forward pass's embedding rows, scaled by the cells' values.
@inline(__always)
func scale<S: BinaryFloatingPoint & SIMDScalar>(_ source: UnsafePointer<S>, by x: S, into out: UnsafeMutablePointer<S>, count: Int) {
    var c = 0
    while c + 8 <= count {
        let v = UnsafeRawPointer(source + c).loadUnaligned(as: SIMD8<S>.self) * x
        UnsafeMutableRawPointer(out + c).storeBytes(of: v, as: SIMD8<S>.self)
        c += 8
    }
    while c < count { out[c] = source[c] * x; c += 1 }
}

/// C[p·columns + j] += Σ_q A(p, q)·B(q, j) with A(p, q) = a[p·rowStride + q·innerStride] and
/// B(q, j) = b[q·columns + j], or b[j·inner + q] when `bTransposed`: tiles of 4 rows × 8 columns
/// kept in SIMD registers across the inner loop, scalar loops for the edges. When not
/// `accumulate`, C = A·B, or C = bias + A·B with `bias` (each row of C starting from it), as
/// `fusedGemm` takes them. `Float` products go to the fused AVX2 kernel when `MatrixKernel.active`
/// says so, which reads a transposed B in place and never writes C's starting values; here a
/// transposed B is first copied out row-major, and C is first filled with zeros or the bias row.
@inline(__always)
func gemm<S: BinaryFloatingPoint & SIMDScalar>(_ a: UnsafePointer<S>, rowStride: Int, innerStride: Int, _ b: UnsafePointer<S>,
                                               _ c: UnsafeMutablePointer<S>, rows: Int, inner: Int, columns: Int, bTransposed: Bool = false,
                                               accumulate: Bool = true, bias: UnsafePointer<S>? = nil) {
    #if arch(x86_64)
    if S.self == Float.self && MatrixKernel.active.fused {
        fusedGemm(float(reading: a), rowStride: rowStride, innerStride: innerStride, float(reading: b), float(c),
                  rows: rows, inner: inner, columns: columns, bTransposed: bTransposed, wide: MatrixKernel.active == .avx512,
                  accumulate: accumulate, bias: bias.map { float(reading: $0) })
        return
    }
    #endif
    if bTransposed {
        withUnsafeTemporaryAllocation(of: S.self, capacity: max(1, inner * columns)) { copy in
            let bt = copy.baseAddress!
            for j in 0..<columns { for q in 0..<inner { bt[q * columns + j] = b[j * inner + q] } }
            gemm(a, rowStride: rowStride, innerStride: innerStride, UnsafePointer(bt), c, rows: rows, inner: inner, columns: columns,
                 accumulate: accumulate, bias: bias)
        }
        return
    }
    if !accumulate {
        if let bias { for r in 0..<rows { (c + r * columns).update(from: bias, count: columns) } } else { c.update(repeating: 0, count: rows * columns) }
    }
    let wide = columns & ~7
    var p = 0
    while p + 4 <= rows {
        let a0 = a + p * rowStride, a1 = a0 + rowStride, a2 = a1 + rowStride, a3 = a2 + rowStride
        var j = 0
        while j < wide {
            let c0 = c + p * columns + j, c1 = c0 + columns, c2 = c1 + columns, c3 = c2 + columns
            var s0 = UnsafeRawPointer(c0).loadUnaligned(as: SIMD8<S>.self)
            var s1 = UnsafeRawPointer(c1).loadUnaligned(as: SIMD8<S>.self)
            var s2 = UnsafeRawPointer(c2).loadUnaligned(as: SIMD8<S>.self)
            var s3 = UnsafeRawPointer(c3).loadUnaligned(as: SIMD8<S>.self)
            var bp = b + j, q = 0
            while q < inner {
                let bv = UnsafeRawPointer(bp).loadUnaligned(as: SIMD8<S>.self)
                let o = q * innerStride
                s0 += a0[o] * bv
                s1 += a1[o] * bv
                s2 += a2[o] * bv
                s3 += a3[o] * bv
                bp += columns
                q += 1
            }
            UnsafeMutableRawPointer(c0).storeBytes(of: s0, as: SIMD8<S>.self)
            UnsafeMutableRawPointer(c1).storeBytes(of: s1, as: SIMD8<S>.self)
            UnsafeMutableRawPointer(c2).storeBytes(of: s2, as: SIMD8<S>.self)
            UnsafeMutableRawPointer(c3).storeBytes(of: s3, as: SIMD8<S>.self)
            j += 8
        }
        for r in p..<(p + 4) where wide < columns {
            let ar = a + r * rowStride, cr = c + r * columns
            for q in 0..<inner {
                let x = ar[q * innerStride], br = b + q * columns
                for jj in wide..<columns { cr[jj] += x * br[jj] }
            }
        }
        p += 4
    }
    while p < rows {
        let ar = a + p * rowStride, cr = c + p * columns
        for q in 0..<inner {
            let x = ar[q * innerStride]
            if x == 0 { continue }
            let br = b + q * columns
            for jj in 0..<columns { cr[jj] += x * br[jj] }
        }
        p += 1
    }
}

extension Table {
    /// Prefetch hints for the scattered reads a pass over `rows` makes at row `r` + 2: for each of
    /// that row's fields, `base` + index·`stride` (an embedding row in the forward pass, the
    /// gradient's slot → row map entry in the backward pass, each a cache miss for most values).
    @inline(__always)
    func prefetchAhead<T>(of r: Int, in rows: Range<Int>, _ base: UnsafePointer<T>, stride: Int, forWriting: Bool) {
        let next = r + 2
        guard next < rows.upperBound else { return }
        for q in 0..<fields {
            let address = base + Int(indices[next * fields + q]) * stride
            if forWriting { funnel_prefetch_write(address) } else { funnel_prefetch(address) }
        }
    }
}

/// Activations of one block of rows (forward and backward buffers), allocated once.
/// Inverted dropout on the MLP's hidden layers: unit `u` of hidden layer `layer` in table row `r`
/// is dropped when a hash of (key, r, layer, u) falls below `rate`; kept units are divided by
/// 1 − rate. A trainer gives each step its own key.
public struct Dropout: Sendable {
    public var rate: Double
    public var key: UInt64
    public init(rate: Double, key: UInt64) { self.rate = rate; self.key = key }

    /// Whether unit `unit` of hidden layer `layer` in table row `row` is dropped.
    @inline(__always)
    public func drops(row: Int, layer: Int, unit: Int) -> Bool {
        var z = key &+ UInt64(truncatingIfNeeded: row) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(truncatingIfNeeded: layer &* 65_536 &+ unit) &* 0xD1B5_4A32_D192_ED03
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) * 0x1p-53 < rate
    }

    /// Drops and rescales the `width` outputs of `layer` for each row of `rows` at `out` (row-major).
    func apply<Scalar: BinaryFloatingPoint>(_ out: UnsafeMutablePointer<Scalar>, rows: Range<Int>, layer: Int, width: Int) {
        let keep = 1 / (1 - Scalar(rate))
        for (j, r) in rows.enumerated() {
            let row = out + j * width
            for u in 0..<width { row[u] = drops(row: r, layer: layer, unit: u) ? 0 : row[u] * keep }
        }
    }
}

final class DeepWorkspace<Scalar: BinaryFloatingPoint>: @unchecked Sendable {
    let capacity: Int
    var x: [UnsafeMutablePointer<Scalar>] = []   // X_0 … X_L (rows × width)
    var u: [UnsafeMutablePointer<Scalar>] = []   // U_0 … U_{L−1}
    var h: [UnsafeMutablePointer<Scalar>] = []   // MLP layer outputs
    let logit, dz, fmSums, dx, dx0, du, dh0, dh1: UnsafeMutablePointer<Scalar>
    private var all: [UnsafeMutablePointer<Scalar>] = []

    init(_ a: DeepArchitecture, rows: Int) {
        capacity = rows
        func make(_ count: Int) -> UnsafeMutablePointer<Scalar> {
            let p = UnsafeMutablePointer<Scalar>.allocate(capacity: max(1, count))
            p.initialize(repeating: 0, count: max(1, count))
            return p
        }
        let width = a.width
        x = (0...a.crossLayers).map { _ in make(rows * width) }
        u = (0..<a.crossLayers).map { _ in make(rows * width) }
        h = a.mlpShapes.map { make(rows * $0.outputs) }
        let widest = max(width, a.hidden.max() ?? 1)
        logit = make(rows); dz = make(rows); fmSums = make(rows * a.dim)
        dx = make(rows * width); dx0 = make(rows * width); du = make(rows * width)
        dh0 = make(rows * widest); dh1 = make(rows * widest)
        all = x + u + h + [logit, dz, fmSums, dx, dx0, du, dh0, dh1]
    }

    deinit { for p in all { p.deallocate() } }
}

/// Gradients of a DeepFM/DCN-v2 model: the dense gradient, and the rows of the embedding (and
/// linear) gradient a batch touched, kept compactly in touch order: `position` maps a slot to its
/// row in `w` and `v` (−1 when untouched). A thread's gradient therefore costs 4 bytes per slot
/// plus the rows its share of a batch names, not a full copy of the embedding table; clearing and
/// the embedding update cost only what the batch used.
public final class DeepGradient<Scalar: BinaryFloatingPoint & Sendable>: @unchecked Sendable {
    public let slots: Int, dim: Int, denseCount: Int, hasLinear: Bool
    public var bias: Scalar = 0
    public var loss: Double = 0
    /// Row r < `touchedCount` holds the gradient of slot `touchedSlots[r]`.
    private(set) var w: UnsafeMutablePointer<Scalar>, v: UnsafeMutablePointer<Scalar>, touchedSlots: UnsafeMutablePointer<Int>
    let dense: UnsafeMutablePointer<Scalar>
    let position: UnsafeMutablePointer<Int32>
    private var capacity: Int
    public private(set) var touchedCount = 0

    init(_ a: DeepArchitecture, slots: Int) {
        self.slots = slots
        dim = a.dim
        denseCount = a.denseCount
        hasLinear = a.hasLinear
        capacity = min(max(1, slots), 1024)
        w = .allocate(capacity: capacity)
        v = .allocate(capacity: capacity * a.dim)
        touchedSlots = .allocate(capacity: capacity)
        dense = .allocate(capacity: max(1, a.denseCount)); dense.initialize(repeating: 0, count: max(1, a.denseCount))
        position = .allocate(capacity: max(1, slots)); position.initialize(repeating: -1, count: max(1, slots))
    }

    deinit { w.deallocate(); v.deallocate(); touchedSlots.deallocate(); dense.deallocate(); position.deallocate() }

    /// The row of slot `i`, zeroed on its first touch since `clear()`.
    @inline(__always)
    func mark(_ i: Int) -> Int {
        let p = Int(position[i])
        if p >= 0 { return p }
        let r = touchedCount
        if r == capacity { grow() }
        position[i] = Int32(r)
        touchedSlots[r] = i
        touchedCount += 1
        w[r] = 0
        (v + r * dim).update(repeating: 0, count: dim)
        return r
    }

    private func grow() {
        let bigger = min(2 * capacity, max(1, slots))
        let nw = UnsafeMutablePointer<Scalar>.allocate(capacity: bigger), nv = UnsafeMutablePointer<Scalar>.allocate(capacity: bigger * dim)
        let ns = UnsafeMutablePointer<Int>.allocate(capacity: bigger)
        nw.moveInitialize(from: w, count: touchedCount)
        nv.moveInitialize(from: v, count: touchedCount * dim)
        ns.moveInitialize(from: touchedSlots, count: touchedCount)
        w.deallocate(); v.deallocate(); touchedSlots.deallocate()
        w = nw; v = nv; touchedSlots = ns; capacity = bigger
    }

    /// Resets the touched rows, the bias and the loss; `dense` is left as it is, since the backward
    /// pass writes every element of it.
    func clear() {
        for r in 0..<touchedCount { position[touchedSlots[r]] = -1 }
        touchedCount = 0
        bias = 0
        loss = 0
    }

    /// The touched rows of the linear-weight (`linear`) or embedding gradient, for the optimiser.
    func touchedRows(linear: Bool) -> TouchedRows<Scalar> {
        TouchedRows(slots: touchedSlots, count: touchedCount, rows: linear ? w : v, position: position)
    }

    /// The linear-weight gradient of slot `i` (0 when the batch did not touch it).
    public func wValue(_ i: Int) -> Scalar { position[i] < 0 ? 0 : w[Int(position[i])] }
    /// Element `j` of the embedding gradient as a slots × dim matrix (0 for untouched slots).
    public func vValue(_ j: Int) -> Scalar { position[j / dim] < 0 ? 0 : v[Int(position[j / dim]) * dim + j % dim] }
    public func denseValue(_ j: Int) -> Scalar { dense[j] }
}

/// One part of a sparse gradient: row r < `count` (at rows + r·width) belongs to slot `slots[r]`,
/// and `position` maps a slot to its row (−1 when the part did not touch it). Plain pointers, so
/// threads read it without reference counting.
struct TouchedRows<Scalar>: @unchecked Sendable {
    let slots: UnsafePointer<Int>
    let count: Int
    let rows: UnsafePointer<Scalar>
    let position: UnsafePointer<Int32>
}

/// Adagrad / Adam state per parameter, PyTorch semantics: Adagrad p −= lr·g/(√Σg² + ε); Adam
/// p −= (lr/(1 − β₁ᵗ))·m/(√v/√(1 − β₂ᵗ) + ε) with t the optimiser's step count. Parameters come in
/// rows (an embedding row, or all dense weights as one row); rows a batch does not touch are left
/// alone, as PyTorch's SparseAdam (and its Adagrad on sparse gradients) treats embedding rows.
struct AdaptiveState<Scalar: BinaryFloatingPoint & Sendable> {
    let settings: OptimizerSettings
    let width: Int
    /// FTRL-Proximal in place of `settings.kind`: `first` holds z and `second` n.
    let ftrl: FTRLSettings?
    /// L2 added to the gradient of every parameter updated (g + l2·p); not with FTRL, which has its own.
    let l2: Scalar
    var first: [Scalar], second: [Scalar]

    init(rows: Int, width: Int, settings: OptimizerSettings, ftrl: FTRLSettings? = nil, l2: Double = 0) {
        self.settings = settings
        self.width = width
        self.ftrl = ftrl
        self.l2 = ftrl == nil ? Scalar(l2) : 0
        first = [Scalar](repeating: 0, count: settings.kind == .adam || ftrl != nil ? rows * width : 0)
        second = [Scalar](repeating: 0, count: rows * width)
    }

    /// Adam's step size lr/(1 − β₁ᵗ) and √(1 − β₂ᵗ) at optimiser step `t` (from 1).
    /// `rows` is the batch's row count, which scales mean gradients to sums for FTRL.
    static func corrections(_ settings: OptimizerSettings, step t: Int, rows: Int) -> (step: Scalar, root: Scalar, rows: Scalar) {
        (Scalar(settings.learningRate / (1 - pow(settings.beta1, Double(t)))), Scalar((1 - pow(settings.beta2, Double(t))).squareRoot()), Scalar(rows))
    }

    /// Updates row `row`'s `width` parameters at `p` with gradients at `g`; `c` from `corrections`.
    @inline(__always)
    mutating func update(row: Int, _ p: UnsafeMutablePointer<Scalar>, _ g: UnsafePointer<Scalar>, _ c: (step: Scalar, root: Scalar, rows: Scalar)) {
        let base = row * width, n = width, settings = settings, ftrl = ftrl, l2 = l2
        second.withUnsafeMutableBufferPointer { sq in
            first.withUnsafeMutableBufferPointer { fm in
                Self.apply(settings, ftrl, l2: l2, p, g, first: fm.baseAddress.map { $0 + base }, second: sq.baseAddress! + base, count: n, c)
            }
        }
    }

    /// The update of `n` parameters at `p` with gradients at `g` and their state at `first` and
    /// `second` (already at the parameters' offset): FTRL-Proximal when `ftrl` is set (z in `first`,
    /// n in `second`), else Adagrad or Adam, eight at a time for `Float`, on g + l2·p when `l2` ≠ 0.
    @inline(__always)
    static func apply(_ settings: OptimizerSettings, _ ftrl: FTRLSettings?, l2: Scalar, _ p: UnsafeMutablePointer<Scalar>, _ g: UnsafePointer<Scalar>,
                      first: UnsafeMutablePointer<Scalar>?, second s: UnsafeMutablePointer<Scalar>, count n: Int,
                      _ c: (step: Scalar, root: Scalar, rows: Scalar)) {
        if l2 != 0 {
            withUnsafeTemporaryAllocation(of: Scalar.self, capacity: n) { scratch in
                let decayed = scratch.baseAddress!
                for j in 0..<n { decayed[j] = g[j] + l2 * p[j] }
                apply(settings, ftrl, l2: 0, p, UnsafePointer(decayed), first: first, second: s, count: n, c)
            }
            return
        }
        if let ftrl, let z = first {
            for j in 0..<n {
                ftrl.accumulate(z: &z[j], n: &s[j], gradient: g[j] * c.rows, weight: p[j])
                p[j] = ftrl.weight(z: z[j], n: s[j])
            }
        } else if Scalar.self == Float.self {
            func float(_ x: UnsafeMutablePointer<Scalar>) -> UnsafeMutablePointer<Float> { UnsafeMutableRawPointer(x).assumingMemoryBound(to: Float.self) }
            adaptiveFloat8(settings, float(p), UnsafeRawPointer(g).assumingMemoryBound(to: Float.self), first.map(float), float(s), count: n,
                           (Float(c.step), Float(c.root), Float(c.rows)))
        } else {
            adaptive(settings, p, g, first, s, count: n, c)
        }
    }

    /// Adagrad or Adam on `count` parameters at `p` (first moments at `m`, Adam only; second at `s`).
    @inline(__always)
    static func adaptive(_ settings: OptimizerSettings, _ p: UnsafeMutablePointer<Scalar>, _ g: UnsafePointer<Scalar>,
                         _ m: UnsafeMutablePointer<Scalar>?, _ s: UnsafeMutablePointer<Scalar>, count n: Int,
                         _ c: (step: Scalar, root: Scalar, rows: Scalar)) {
        let lr = Scalar(settings.learningRate), eps = Scalar(settings.epsilon)
        switch settings.kind {
        case .adagrad:
            for j in 0..<n {
                s[j] += g[j] * g[j]
                p[j] -= lr * g[j] / (s[j].squareRoot() + eps)
            }
        case .adam:
            let b1 = Scalar(settings.beta1), b2 = Scalar(settings.beta2), m = m!
            let floor = adamMomentFloor(step: c.step)
            for j in 0..<n {
                m[j] = b1 * m[j] + (1 - b1) * g[j]
                if abs(m[j]) < floor { m[j] = 0 }
                s[j] = b2 * s[j] + (1 - b2) * g[j] * g[j]
                p[j] -= c.step * m[j] / (s[j].squareRoot() / c.root + eps)
            }
        }
    }

    /// `adaptive` for `Float`, eight parameters at a time (`FunnelKernelsAVX2.adaptiveSteps`, in its
    /// AVX2 compilation when `MatrixKernel.active` says so), the rest by `adaptive`. Bit-identical
    /// to `adaptive` either way; only the throughput differs.
    static func adaptiveFloat8(_ settings: OptimizerSettings, _ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                               _ m: UnsafeMutablePointer<Float>?, _ s: UnsafeMutablePointer<Float>, count n: Int,
                               _ c: (step: Float, root: Float, rows: Float)) {
        let wide = n & ~7, adam = settings.kind == .adam
        let lr = Float(settings.learningRate), eps = Float(settings.epsilon), b1 = Float(settings.beta1), b2 = Float(settings.beta2)
        // `MatrixKernel.active` is `.baseline` off x86-64, so only the baseline loop runs there.
        if MatrixKernel.active.fused {
            adaptiveStepsAVX2(adam: adam, p, g, m, s, count: wide, lr: lr, epsilon: eps, beta1: b1, beta2: b2, step: c.step, root: c.root)
        } else {
            adaptiveSteps(adam: adam, p, g, m, s, count: wide, lr: lr, epsilon: eps, beta1: b1, beta2: b2, step: c.step, root: c.root)
        }
        if wide < n {
            AdaptiveState<Float>.adaptive(settings, p + wide, g + wide, m.map { $0 + wide }, s + wide, count: n - wide, c)
        }
    }

    /// `update(row:…)` for every slot a batch touched, the batch's gradient being the sum of the
    /// `sources` (one per thread, each holding the rows its share touched). A slot's gradient is its
    /// rows summed in source order (as the threads' gradients would be added), and it is updated
    /// once, by the first source that touched it. Each source's rows are split into `parts`
    /// contiguous shares on as many threads; each slot is updated in exactly one share, so no two
    /// threads touch the same parameters or state and the result does not depend on `parts`. The
    /// state's buffers are borrowed once for all rows.
    mutating func updateTouched(_ sources: [TouchedRows<Scalar>], _ p: UnsafeMutablePointer<Scalar>,
                                _ c: (step: Scalar, root: Scalar, rows: Scalar), parts: Int = 1, team: WorkerTeam? = nil) {
        let n = width, settings = settings, ftrl = ftrl, l2 = l2
        let count = sources.reduce(0) { $0 + $1.count }
        let parts = count >= 2048 ? max(1, parts) : 1, ahead = 8
        second.withUnsafeMutableBufferPointer { sq in
            first.withUnsafeMutableBufferPointer { fm in
                let shared = Shared((p: p, m: fm.baseAddress, s: sq.baseAddress!))
                WorkerTeam.perform(parts, on: team) { t in
                    let (p, m, s) = shared.value
                    withUnsafeTemporaryAllocation(of: Scalar.self, capacity: n) { scratch in
                        let sum = scratch.baseAddress!
                        for k in 0..<sources.count {
                            let source = sources[k], chunk = (source.count + parts - 1) / parts
                            let end = min(source.count, (t + 1) * chunk)
                            rows: for l in (t * chunk)..<end {
                                if l + ahead < end {
                                    // The parameters and state of a row `ahead` rows on, and whether the other sources touched it.
                                    let next = source.slots[l + ahead], nb = next * n
                                    funnel_prefetch_write(p + nb)
                                    funnel_prefetch_write(s + nb)
                                    if let m { funnel_prefetch_write(m + nb) }
                                    for other in 0..<sources.count where other != k { funnel_prefetch(sources[other].position + next) }
                                }
                                let slot = source.slots[l]
                                for earlier in 0..<k where sources[earlier].position[slot] >= 0 { continue rows }
                                var g = source.rows + l * n
                                if k + 1 < sources.count {
                                    sum.update(from: g, count: n)
                                    for later in (k + 1)..<sources.count where sources[later].position[slot] >= 0 {
                                        let row = sources[later].rows + Int(sources[later].position[slot]) * n
                                        for e in 0..<n { sum[e] += row[e] }
                                    }
                                    g = UnsafePointer(sum)
                                }
                                let base = slot * n
                                Self.apply(settings, ftrl, l2: l2, p + base, g, first: m.map { $0 + base }, second: s + base, count: n, c)
                            }
                        }
                    }
                }
            }
        }
    }

    /// One parameter as a row of width 1.
    @inline(__always)
    mutating func update(row: Int, _ p: inout Scalar, _ g: Scalar, _ c: (step: Scalar, root: Scalar, rows: Scalar)) {
        var value = p, grad = g
        withUnsafeMutablePointer(to: &value) { vp in withUnsafePointer(to: &grad) { update(row: row, vp, $0, c) } }
        p = value
    }

    /// Updates all parameters of row 0 (the dense layers) with the sum of the `sources`' gradients
    /// (added in source order, as the threads' gradients would be). One pass over memory, in blocks
    /// that stay in the first-level cache, split into `parts` contiguous ranges on as many threads;
    /// every parameter's update is elementwise, so the result does not depend on `parts`.
    mutating func updateRowZero(_ p: UnsafeMutablePointer<Scalar>, sources: [UnsafeMutablePointer<Scalar>],
                                _ c: (step: Scalar, root: Scalar, rows: Scalar), parts: Int, team: WorkerTeam? = nil) {
        let n = width, settings = settings, l2 = l2
        let parts = n >= 16_384 ? max(1, parts) : 1
        let chunk = (n + parts - 1) / parts, block = 1024
        second.withUnsafeMutableBufferPointer { sq in
            first.withUnsafeMutableBufferPointer { fm in
                let shared = Shared((p: p, m: fm.baseAddress, s: sq.baseAddress!, c: c, sources: sources))
                WorkerTeam.perform(parts, on: team) { t in
                    let (p, m, s, c, sources) = shared.value
                    withUnsafeTemporaryAllocation(of: Scalar.self, capacity: block) { scratch in
                        let sum = scratch.baseAddress!
                        var lo = t * chunk
                        let hi = min(n, lo + chunk)
                        while lo < hi {
                            let len = min(block, hi - lo)
                            var g = UnsafePointer(sources[0] + lo)
                            if sources.count > 1 {
                                let second = sources[1] + lo
                                for e in 0..<len { sum[e] = g[e] + second[e] }
                                for source in sources.dropFirst(2) {
                                    let other = source + lo
                                    for e in 0..<len { sum[e] += other[e] }
                                }
                                g = UnsafePointer(sum)
                            }
                            Self.apply(settings, nil, l2: l2, p + lo, g, first: m.map { $0 + lo }, second: s + lo, count: len, c)
                            lo += len
                        }
                    }
                }
            }
        }
    }
}

/// Optimiser of a DeepFM/DCN-v2 model: dense parameters and the bias every step, embedding rows
/// (and DeepFM's linear weights) only where the batch touched them.
public struct DeepOptimizer<Scalar: BinaryFloatingPoint & SIMDScalar & Sendable> {
    var wState: AdaptiveState<Scalar>, vState: AdaptiveState<Scalar>, denseState: AdaptiveState<Scalar>, biasState: AdaptiveState<Scalar>
    var steps = 0
    var decay: RowDecay

    /// Brings the rows that `rows` of `t` name up to date with the decay of the steps they skipped
    /// (before their gradient is taken).
    public mutating func catchUp(_ m: inout DeepModel<Scalar>, _ t: Table, rows: Range<Int>) {
        let cells = (rows.lowerBound * t.fields)..<(rows.upperBound * t.fields)
        let tables = m.architecture.embeddingTables, perTable = m.slots / tables
        for table in 0..<tables {
            decay.bringUp(cells.lazy.map { table * perTable + Int(t.indices[$0]) }, to: steps, v: &m.v, w: &m.w, width: m.architecture.dim)
        }
    }

    /// Brings every row up to date with the decay (the model is then exact).
    public mutating func settle(_ m: inout DeepModel<Scalar>) {
        decay.bringUp(0..<m.slots, to: steps, v: &m.v, w: &m.w, width: m.architecture.dim)
    }

    public init(_ m: DeepModel<Scalar>, settings: OptimizerSettings) {
        decay = RowDecay(slots: m.slots, settings: settings)
        wState = AdaptiveState(rows: m.w.count, width: 1, settings: settings, ftrl: settings.linearFTRL, l2: settings.embeddingL2)
        vState = AdaptiveState(rows: m.slots, width: m.architecture.dim, settings: settings, l2: settings.embeddingL2)
        denseState = AdaptiveState(rows: 1, width: m.dense.count, settings: settings, l2: settings.denseL2)
        biasState = AdaptiveState(rows: 1, width: 1, settings: settings)
    }

    public mutating func step(_ m: inout DeepModel<Scalar>, _ g: DeepGradient<Scalar>, rows: Int, threads: Int = 1) {
        step(&m, [g], rows: rows, threads: threads)
    }

    /// One step with the batch's gradient given as the sum of `parts` (one per thread's share, added
    /// in order). The update runs on `threads` threads: `team`'s when given, else Dispatch's.
    @_specialize(exported: true, where Scalar == Float)
    public mutating func step(_ m: inout DeepModel<Scalar>, _ parts: [DeepGradient<Scalar>], rows: Int, threads: Int = 1,
                              team: WorkerTeam? = nil) {
        steps += 1
        let c = AdaptiveState<Scalar>.corrections(vState.settings, step: steps, rows: rows)
        let first = parts[0]
        if first.hasLinear {
            let bias = parts.dropFirst().reduce(first.bias) { $0 + $1.bias }
            biasState.update(row: 0, &m.bias, bias, c)
            let sources = parts.map { $0.touchedRows(linear: true) }
            m.w.withUnsafeMutableBufferPointer { w in wState.updateTouched(sources, w.baseAddress!, c, parts: threads, team: team) }
        }
        let sources = parts.map { $0.touchedRows(linear: false) }
        m.v.withUnsafeMutableBufferPointer { v in vState.updateTouched(sources, v.baseAddress!, c, parts: threads, team: team) }
        // This step's decay of the rows just updated (a row in several parts is brought up once).
        for source in sources {
            decay.bringUp((0..<source.count).lazy.map { source.slots[$0] }, to: steps, v: &m.v, w: &m.w, width: m.architecture.dim)
        }
        if !m.dense.isEmpty {
            m.dense.withUnsafeMutableBufferPointer { d in denseState.updateRowZero(d.baseAddress!, sources: parts.map(\.dense), c, parts: threads, team: team) }
        }
    }
}

/// Mini-batch training of a DeepFM/DCN-v2 model over `threads` threads: each thread takes a
/// contiguous share of every batch into its own gradient buffers, which are summed in thread
/// order, so a fixed seed and thread count give the same model on every run. The threads are a
/// `WorkerTeam` kept for the trainer's life, so each step's parallel sections start at once.
public final class DeepTrainer<Scalar: BinaryFloatingPoint & SIMDScalar & Sendable>: @unchecked Sendable {
    public var model: DeepModel<Scalar>
    var optimizer: DeepOptimizer<Scalar>
    let batchSize: Int, threads: Int
    let gradients: [DeepGradient<Scalar>]
    /// Per thread, one workspace per tower.
    let workspaces: [[DeepWorkspace<Scalar>]]
    let team: WorkerTeam
    /// A conversion model's objective (its towers' losses); nil: the click log loss of tower 0.
    let objective: ConversionObjective?
    /// Dropout rate (settings.dropout) and the key of each step's mask, drawn from the seed.
    let dropoutRate: Double
    var dropoutKeys: SplitMix64

    public init(model: DeepModel<Scalar>, optimizer settings: OptimizerSettings, batchSize: Int, threads: Int, seed: UInt64 = 1,
                objective: ConversionObjective? = nil) {
        self.model = model
        self.objective = objective
        optimizer = DeepOptimizer(model, settings: settings)
        dropoutRate = settings.dropout
        dropoutKeys = SplitMix64(seed: seed ^ 0xD50F_0A7E_5EED_0001)
        self.batchSize = batchSize
        self.threads = max(1, threads)
        let share = (batchSize + self.threads - 1) / self.threads
        gradients = (0..<self.threads).map { _ in DeepGradient(model.architecture, slots: model.slots) }
        workspaces = (0..<self.threads).map { _ in (0..<model.architecture.towers).map { _ in DeepWorkspace(model.architecture, rows: share) } }
        team = WorkerTeam(size: self.threads)
    }

    /// One optimiser step on `rows`; returns the batch's summed log loss.
    @discardableResult
    @_specialize(exported: true, where Scalar == Float)
    public func step(_ t: Table, rows: Range<Int>) -> Double {
        optimizer.catchUp(&model, t, rows: rows)
        let parts = computeGradient(t, rows: rows)
        // No other reference to the model's arrays is alive here, so the update is in place.
        optimizer.step(&model, Array(gradients[..<parts]), rows: rows.count, threads: threads, team: team)
        return gradients[..<parts].reduce(0) { $0 + $1.loss }
    }

    /// Fills the first `parts` (returned) of `gradients` with the gradients of the threads'
    /// shares of the batch, whose sum in order is the batch's.
    private func computeGradient(_ t: Table, rows: Range<Int>) -> Int {
        // Contiguous shares of `share` rows; a batch smaller than `threads` shares gets fewer parts
        // rather than empty ones, so every part's gradient is written by its backward pass.
        let share = (rows.count + min(threads, rows.count) - 1) / min(threads, rows.count)
        let parts = (rows.count + share - 1) / share
        let m = model
        let divisor = rows.count
        let dropout = dropoutRate > 0 ? Dropout(rate: dropoutRate, key: dropoutKeys.next()) : nil
        let rate = Scalar(dropoutRate)
        let objective = objective
        let clickedWeight = objective.map { _ in ConversionObjective.clickedWeight(t, rows: rows) } ?? 0
        // One part runs on the calling thread (`perform` makes no section for it).
        WorkerTeam.perform(parts, on: team) { p in
            let lo = rows.lowerBound + p * share, hi = min(rows.upperBound, lo + share)
            let g = gradients[p]
            g.clear()
            if let objective {
                m.forwardTowers(t, rows: lo..<hi, workspaces[p], dropout: dropout)
                g.loss = objective.fill(t, rows: lo..<hi, workspaces[p], divisor: divisor, clickedWeight: clickedWeight)
                m.backwardTowers(t, rows: lo..<hi, workspaces[p], dropout: rate, into: g)
            } else {
                m.forward(t, rows: lo..<hi, workspaces[p][0], dropout: dropout)
                m.backward(t, rows: lo..<hi, divisor: divisor, workspaces[p][0], dropout: rate, into: g)
            }
        }
        return parts
    }

    /// One pass over `t` in order; returns the mean training loss (the log loss of a click model).
    @discardableResult
    @_specialize(exported: true, where Scalar == Float)
    public func epoch(_ t: Table) -> Double {
        var loss = 0.0, start = 0
        while start < t.rows {
            let end = min(start + batchSize, t.rows)
            loss += step(t, rows: start..<end)
            start = end
        }
        optimizer.settle(&model)
        return loss / Double(max(t.rows, 1))
    }
}
