import Foundation
@testable import FunnelModels
import FunnelBase
import FunnelTestSupport
import Testing

/// The conversion models' towers and losses against PyTorch autograd and torch.optim in double
/// precision (`tools/fixtures/make_conversion_fixtures.py`, whose losses are those of
/// `bench/conversion/torch_cvr.py`), and the loss of single rows worked by hand.
@Suite(.timeLimit(.minutes(5)))
struct ConversionTests {
    static func table(indices: [[Double]], clicks: [Double], purchases: [Double]) -> Table {
        var t = Table()
        t.rows = indices.count
        t.fields = indices[0].count
        for row in indices {
            for i in row { t.indices.append(UInt32(i)); t.values.append(1) }
        }
        t.labels = clicks.map(Float.init)
        t.conversions = purchases.map(Float.init)
        return t
    }

    @Test func everyObjectiveMatchesPyTorch() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/conversion_fixtures.json")
        let cases = try JSONFixture.load(url).objects("cases")
        #expect(cases.count >= 11)
        #expect(Set(try cases.map { try $0.string("objective") }) == Set(ConversionModelKind.allCases.map(\.rawValue)), "every objective has a case")
        #expect(try cases.contains { !(try $0.ints("clip_binds_ctr_rows")).isEmpty }, "a case clips pCTR")
        #expect(try cases.contains { !(try $0.ints("clip_binds_one_minus_ctr_rows")).isEmpty }, "a case clips 1 − pCTR")
        for c in cases {
            let name = try c.string("name")
            let kind = try #require(ConversionModelKind(rawValue: try c.string("objective")))
            let t = Self.table(indices: try c.rows("indices"), clicks: try c.doubles("clicks"), purchases: try c.doubles("purchases"))
            let a = DeepArchitecture(kind: .dcnv2, fields: try c.int("F"), dim: try c.int("K"), hidden: try c.ints("hidden"), crossLayers: 0,
                                     towers: try c.int("T"))
            #expect(a.towers == kind.towers, "\(name): towers")
            var m = DeepModel<Double>(architecture: a, slots: try c.int("S"), bias: 0, w: [], v: try c.doubles("V"), dense: try c.doubles("dense"))
            #expect(m.dense.count == a.denseCount, "\(name): dense size")
            let objective = ConversionObjective(kind: kind, clip: try c.double("clip"), lambda: try c.double("lambda"))
            func same(_ got: [Double], _ want: [Double], _ what: String, _ tol: Double) {
                #expect(got.count == want.count, "\(name) \(what): count")
                for (j, (x, y)) in zip(got, want).enumerated() { #expect(abs(x - y) <= tol * max(1, abs(y)), "\(name) \(what)[\(j)]: \(x) vs \(y)") }
            }
            func rowMajor(_ towers: [[Double]]) -> [Double] { (0..<t.rows).flatMap { r in towers.map { $0[r] } } }
            same(rowMajor(m.towerLogits(t)), (try c.rows("logits_before")).flatMap { $0 }, "logits before", 1e-12)
            let g = m.conversionGradient(t, rows: 0..<t.rows, objective: objective)
            #expect(abs(g.loss - (try c.double("loss_before"))) < 1e-12, "\(name): loss \(g.loss)")
            same((0..<a.denseCount).map { g.denseValue($0) }, try c.doubles("grad_dense"), "dense gradient", 1e-12)
            same((0..<m.v.count).map { g.vValue($0) }, try c.doubles("grad_V"), "V gradient", 1e-12)
            var o = OptimizerSettings()
            o.kind = .adam
            o.learningRate = try c.double("lr")
            o.epsilon = try c.double("eps")
            let betas = try c.doubles("betas")
            o.beta1 = betas[0]; o.beta2 = betas[1]
            o.embeddingL2 = 0
            var optimizer = DeepOptimizer(m, settings: o)
            let batches = (try c.rows("batches")).map { $0.map { Int($0) } }
            let losses = try c.doubles("batch_losses")
            for (s, rows) in batches.enumerated() {
                let sub = t.subset(rows)
                optimizer.catchUp(&m, sub, rows: 0..<sub.rows)
                let g = m.conversionGradient(sub, rows: 0..<sub.rows, objective: objective)
                #expect(abs(g.loss - losses[s]) < 1e-12, "\(name) batch \(s) loss")
                optimizer.step(&m, g, rows: sub.rows)
            }
            optimizer.settle(&m)
            same(m.v, try c.doubles("V_after"), "V after", 1e-10)
            same(m.dense, try c.doubles("dense_after"), "dense after", 1e-10)
            same(rowMajor(m.towerLogits(t)), (try c.rows("logits_after")).flatMap { $0 }, "logits after", 1e-10)
        }
    }

    /// One row's loss and logit gradients worked by hand: logits 0 give probabilities ½.
    @Test func singleRowsByHand() {
        let z = SIMD4<Double>(0, 0, 0, 0), ln2 = log(2.0)
        // ESMM on a clicked, converted row: δ(1, ½) + δ(1, ¼) = ln 2 + ln 4; dz₀ = −½ + (q − 1)(1 − ½)/(1 − q)·… worked below.
        let esmm = ConversionObjective(kind: .esmm).row(z, click: 1, conversion: 1, clickedWeight: 1)
        #expect(abs(esmm.loss - (ln2 + 2 * ln2)) < 1e-15)
        // d δ(1, q)/dq = −1/q = −4; dq/dz₀ = q(1 − p_c) = ⅛: −½ from the click loss, −½ from CTCVR.
        #expect(abs(esmm.dz[0] - -1.0) < 1e-15)
        #expect(abs(esmm.dz[1] - -0.5) < 1e-15)
        // Naive on an unclicked row: only the click loss, ln 2, dz₀ = ½.
        let naive = ConversionObjective(kind: .naiveCVR).row(z, click: 0, conversion: 0, clickedWeight: 4)
        #expect(abs(naive.loss - ln2) < 1e-15 && naive.dz[1] == 0 && abs(naive.dz[0] - 0.5) < 1e-15)
        // Naive on a clicked row of a batch where one row in four is clicked: the conversion loss counts 4×.
        let clicked = ConversionObjective(kind: .naiveCVR).row(z, click: 1, conversion: 0, clickedWeight: 4)
        #expect(abs(clicked.loss - 5 * ln2) < 1e-15 && abs(clicked.dz[1] - 2) < 1e-15)
        // ESCM²-IPS on a clicked, unconverted row, p_c = ½ > clip: weight 2, λ = 1: + 2·ln 2 and dz₁ += 2·½.
        let ips = ConversionObjective(kind: .escm2IPS).row(z, click: 1, conversion: 0, clickedWeight: 1)
        // CTCVR on an unconverted clicked row: δ(0, ¼) = ln(4/3), dz₁ = (1/(1 − ¼))·¼·½ = ⅙.
        #expect(abs(ips.loss - (ln2 + log(4.0 / 3) + 2 * ln2)) < 1e-15)
        #expect(abs(ips.dz[1] - (1.0 / 6 + 1)) < 1e-15)
        // DCMT on an unclicked row: counterfactual label 1 weighted 1/(1 − ½) = 2: 2·ln 2, dz₂ = 2·(½ − 1);
        // the constraint |1 − (½ + ½)| = 0 adds nothing.
        let dcmt = ConversionObjective(kind: .dcmt).row(z, click: 0, conversion: 0, clickedWeight: 1)
        #expect(abs(dcmt.loss - (ln2 + log(4.0 / 3) + 2 * ln2)) < 1e-15)
        #expect(abs(dcmt.dz[2] - -1) < 1e-15)
    }

    /// A random two-label table: `rows` rows of `fields` slots among `slots`, about a third clicked,
    /// a third of those converted.
    static func randomTable(rows: Int, fields: Int, slots: Int, seed: UInt64) -> Table {
        var rng = SplitMix64(seed: seed)
        var t = Table()
        t.rows = rows
        t.fields = fields
        for _ in 0..<(rows * fields) { t.indices.append(UInt32(Int(rng.unit() * Double(slots)) % slots)); t.values.append(1) }
        t.labels = (0..<rows).map { _ in rng.unit() < 0.35 ? 1 : 0 }
        t.conversions = t.labels.map { $0 > 0 && rng.unit() < 0.4 ? 1 : 0 }
        return t
    }

    /// Every objective's gradient (dense layers and embeddings, through every tower, clips and
    /// stop-gradients included) against central finite differences of its loss; the naive model
    /// and ESMM also with an embedding table per tower.
    @Test(arguments: ConversionModelKind.allCases.map { ($0, false) } + [(.naiveCVR, true), (.esmm, true)])
    func gradientsMatchFiniteDifferences(kind: ConversionModelKind, separate: Bool) {
        let t = Self.randomTable(rows: 16, fields: 3, slots: 10, seed: 5)
        let a = DeepArchitecture(kind: .dcnv2, fields: 3, dim: 3, hidden: [6, 4], crossLayers: kind == .dcmt ? 1 : 0, towers: kind.towers,
                                 separateEmbeddings: separate)
        var m = DeepModel<Double>(architecture: a, slots: 10, seed: 17, scale: 0.5)
        #expect(m.v.count == (separate ? 2 : 1) * 10 * 3)
        // A click tower that predicts low on some rows and high on others, so that both clips bind somewhere.
        m.startOutput(tower: 0, at: kind == .dcmt || kind == .chorusCVR ? 2.5 : -2.5)
        let objective = ConversionObjective(kind: kind, clip: 0.08, lambda: 0.7)
        let g = m.conversionGradient(t, rows: 0..<t.rows, objective: objective)
        // The stop-gradient quantities stay at the unmoved model's values while a weight moves.
        let held = m.towerLogits(t)
        #expect(abs(m.conversionLoss(t, objective: objective, held: held) - g.loss) < 1e-12)
        func loss(_ m: DeepModel<Double>) -> Double { m.conversionLoss(t, objective: objective, held: held) }
        let h = 1e-6
        for j in 0..<m.dense.count {
            var up = m, down = m
            up.dense[j] += h; down.dense[j] -= h
            let numeric = (loss(up) - loss(down)) / (2 * h)
            #expect(abs(g.denseValue(j) - numeric) < 1e-7 * max(1, abs(numeric)), "\(kind) dense[\(j)]: \(g.denseValue(j)) vs \(numeric)")
        }
        for j in 0..<m.v.count {
            var up = m, down = m
            up.v[j] += h; down.v[j] -= h
            let numeric = (loss(up) - loss(down)) / (2 * h)
            #expect(abs(g.vValue(j) - numeric) < 1e-7 * max(1, abs(numeric)), "\(kind) V[\(j)]: \(g.vValue(j)) vs \(numeric)")
        }
    }

    /// Training a conversion model depends only on the seed and the thread count: two runs on
    /// two threads give the same weights to the bit.
    @Test func trainingIsDeterministicPerThreadCount() {
        let t = Self.randomTable(rows: 3000, fields: 4, slots: 200, seed: 8)
        let a = DeepArchitecture(kind: .dcnv2, fields: 4, dim: 4, hidden: [16, 8], towers: 3)
        var o = OptimizerSettings()
        o.kind = .adam
        o.learningRate = 0.01
        o.embeddingL2 = 1e-4
        func train() -> DeepModel<Float> {
            let trainer = DeepTrainer(model: DeepModel<Float>(architecture: a, slots: 200, seed: 3), optimizer: o, batchSize: 256, threads: 2,
                                      seed: 3, objective: ConversionObjective(kind: .chorusCVR))
            trainer.epoch(t)
            trainer.epoch(t)
            return trainer.model
        }
        let first = train(), second = train()
        #expect(first.v == second.v && first.dense == second.dense)
        #expect(first.v != DeepModel<Float>(architecture: a, slots: 200, seed: 3).v, "training moved the embeddings")
    }

    /// Bad two-label tables are refused with the file, line and column.
    @Test func badLabelsNameTheFileLineAndColumn() {
        var spec = FeatureSpec(label: "click", categorical: ["item"], numeric: [])
        spec.conversionLabel = "purchase"
        func read(_ text: String, _ spec: FeatureSpec) -> String? {
            do { _ = try TableReader.readCSV(bytes: Array(text.utf8), name: "imp.csv", spec: spec); return nil } catch { return error.description }
        }
        let noClick = read("click,purchase,item\n1,1,a\n0,1,b\n", spec)
        #expect(noClick?.contains("imp.csv: line 3, column 'purchase'") == true, "\(noClick ?? "accepted")")
        #expect(noClick?.contains("whose 'click' is 0") == true)
        let notBinary = read("click,purchase,item\n1,2,a\n", spec)
        #expect(notBinary?.contains("imp.csv: line 2, column 'purchase': label '2' must be 0 or 1") == true, "\(notBinary ?? "accepted")")
        let missing = read("click,item\n1,a\n", spec)
        #expect(missing?.contains("no column 'purchase' (--conversion-label)") == true, "\(missing ?? "accepted")")
        let ok = try? TableReader.readCSV(bytes: Array("click,purchase,item\n1,1,a\n0,0,b\n1,0,a\n".utf8), name: "imp.csv", spec: spec).0
        #expect(ok?.conversions == [1, 0, 0] && ok?.labels == [1, 0, 1])
        // The two-label Criteo-like layout: click, conversion, 13 integer and 26 categorical columns, tab-separated.
        var criteo = TableReader.criteoSpec(hashBits: 10, numericTransform: .log)
        criteo.conversionLabel = "purchase"
        let features = (1...13).map { _ in "1" } + (1...26).map { "c\($0)" }
        let text = ["1\t1", "1\t0", "0\t0"].map { ([$0] + features).joined(separator: "\t") }.joined(separator: "\n") + "\n"
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("funnel-criteo2-\(getpid())")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("two.txt").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)))
        let two = try? TableReader.read(path: path, format: "criteo", spec: criteo).0
        #expect(two?.labels == [1, 1, 0] && two?.conversions == [1, 0, 0] && two?.fields == 39)
        #expect(FileManager.default.createFile(atPath: path, contents: Data((["0\t1"].map { ([$0] + features).joined(separator: "\t") }[0] + "\n").utf8)))
        do { _ = try TableReader.read(path: path, format: "criteo", spec: criteo); Issue.record("a conversion without a click was read") } catch {
            #expect(error.description.contains("two.txt: line 1, column 'purchase'"), "\(error.description)")
        }
    }
}
