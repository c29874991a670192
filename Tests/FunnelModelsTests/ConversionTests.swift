import Foundation
@testable import FunnelModels
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
}
