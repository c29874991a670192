import Foundation
import FunnelStats
import Testing

/// Agreement to 1e-9 relative with values computed by scipy and statsmodels
/// (`tools/fixtures/make_stats_fixtures.py` writes `Fixtures/stats_fixtures.json`).
struct FixtureTests {
    nonisolated(unsafe) static let fixtures: [String: Any] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/stats_fixtures.json")
        let data = try! Data(contentsOf: url)
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    static func cases(_ key: String) -> [[String: Any]] { fixtures[key] as! [[String: Any]] }

    func d(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }
    func doubles(_ v: Any?) -> [Double] { (v as! [Any]).map { ($0 as! NSNumber).doubleValue } }

    func close(_ a: Double?, _ b: Double?, rel: Double = 1e-9, abs absTol: Double = 1e-12, _ what: String) {
        guard let a, let b else { #expect(a == nil && b == nil, "\(what): \(String(describing: a)) vs \(String(describing: b))"); return }
        #expect(abs(a - b) <= max(rel * abs(b), absTol), "\(what): \(a) vs \(b)")
    }

    @Test func normalAndTQuantiles() {
        for c in Self.cases("norm_ppf") { close(Distributions.normalQuantile(d(c["q"])!), d(c["value"]), "norm.ppf(\(c["q"]!))") }
        for c in Self.cases("t_ppf") {
            close(Distributions.studentTQuantile(d(c["q"])!, df: d(c["df"])!), d(c["value"]), "t.ppf(\(c["q"]!), \(c["df"]!))")
        }
    }

    @Test func wilson() {
        for c in Self.cases("wilson") {
            let e = Estimators.proportion(successes: c["k"] as! Int, trials: c["n"] as! Int, alpha: d(c["alpha"])!)
            close(e.ci?.0, d(c["lo"]), "wilson lo \(c["k"]!)/\(c["n"]!)")
            close(e.ci?.1, d(c["hi"]), "wilson hi \(c["k"]!)/\(c["n"]!)")
        }
    }

    @Test func proportionsZTest() {
        for c in Self.cases("proportions_ztest") {
            let r = Compare.proportions(kc: c["k1"] as! Int, nc: c["n1"] as! Int, kt: c["k2"] as! Int, nt: c["n2"] as! Int, alpha: 0.05)
            close(r.pValue, d(c["p"]), "ztest p")
        }
    }

    @Test func welch() {
        for c in Self.cases("welch") {
            let r = Compare.means(control: doubles(c["a"]), treatment: doubles(c["b"]), alpha: d(c["alpha"])!)
            close(r.absoluteDiff, d(c["mean_diff"]), "welch diff")
            close(r.pValue, d(c["p"]), "welch p")
            close(r.ci?.0, d(c["ci_lo"]), "welch lo")
            close(r.ci?.1, d(c["ci_hi"]), "welch hi")
        }
    }

    @Test func tInterval() {
        for c in Self.cases("t_interval") {
            let e = Estimators.mean(doubles(c["values"]), alpha: d(c["alpha"])!)
            close(e.value, d(c["mean"]), "mean")
            close(e.ci?.0, d(c["lo"]), "t lo")
            close(e.ci?.1, d(c["hi"]), "t hi")
        }
    }

    @Test func chiSquare() {
        for c in Self.cases("chisquare") {
            close(Estimators.chiSquareGoodnessOfFit(observed: doubles(c["observed"]), weights: doubles(c["weights"])), d(c["p"]), "chisquare")
        }
    }

    @Test func multipleTesting() {
        let methods: [String: MultipleTesting.Method] = ["holm": .holm, "bonferroni": .bonferroni, "fdr_bh": .benjaminiHochberg]
        for c in Self.cases("multipletests") {
            let adjusted = MultipleTesting.adjust(doubles(c["p"]), method: methods[c["method"] as! String]!)
            for (a, b) in zip(adjusted, doubles(c["adjusted"])) { close(a, b, "\(c["method"]!) \(c["p"]!)") }
        }
    }

    @Test func deltaMethodRatio() {
        for c in Self.cases("delta_ratio") {
            let e = Estimators.ratio(x: doubles(c["x"]), y: doubles(c["y"]), alpha: d(c["alpha"])!)
            close(e.value, d(c["value"]), "ratio")
            close(e.variance, d(c["variance"]), "delta variance")
            close(e.ci?.0, d(c["lo"]), "ratio lo")
            close(e.ci?.1, d(c["hi"]), "ratio hi")
        }
    }

    @Test func relativeLift() {
        for c in Self.cases("relative_lift") {
            let alpha = d(c["alpha"])!
            let ec = Estimators.ratio(x: doubles(c["x_c"]), y: doubles(c["y_c"]), alpha: alpha)
            let et = Estimators.ratio(x: doubles(c["x_t"]), y: doubles(c["y_t"]), alpha: alpha)
            let r = Compare.ratios(control: ec, treatment: et, alpha: alpha)
            close(r.relativeLift, d(c["lift"]), "lift")
            close(r.relativeCI?.0, d(c["lo"]), "lift lo")
            close(r.relativeCI?.1, d(c["hi"]), "lift hi")
        }
    }
}
