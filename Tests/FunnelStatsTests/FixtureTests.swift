import Foundation
import FunnelStats
import FunnelTestSupport
import Testing

/// Agreement to 1e-9 relative with values computed by scipy and statsmodels
/// (`tools/fixtures/make_stats_fixtures.py` writes `Fixtures/stats_fixtures.json`).
struct FixtureTests {
    static func cases(_ key: String) throws -> [JSONFixture] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/stats_fixtures.json")
        return try JSONFixture.load(url).objects(key)
    }

    /// An expected value that the reference may leave undefined (JSON null).
    func d(_ v: Any?) -> Double? { (v as? NSNumber)?.doubleValue }

    func close(_ a: Double?, _ b: Double?, rel: Double = 1e-9, abs absTol: Double = 1e-12, _ what: String) {
        guard let a, let b else { #expect(a == nil && b == nil, "\(what): \(String(describing: a)) vs \(String(describing: b))"); return }
        #expect(abs(a - b) <= max(rel * abs(b), absTol), "\(what): \(a) vs \(b)")
    }

    @Test func normalAndTQuantiles() throws {
        for c in try Self.cases("norm_ppf") { close(Distributions.normalQuantile((try c.double("q"))), d(c["value"]), "norm.ppf(\(c["q"] ?? "?"))") }
        for c in try Self.cases("t_ppf") {
            close(Distributions.studentTQuantile((try c.double("q")), df: (try c.double("df"))), d(c["value"]), "t.ppf(\(c["q"] ?? "?"), \(c["df"] ?? "?"))")
        }
    }

    @Test func wilson() throws {
        for c in try Self.cases("wilson") {
            let e = Estimators.proportion(successes: (try c.int("k")), trials: (try c.int("n")), alpha: (try c.double("alpha")))
            close(e.ci?.0, d(c["lo"]), "wilson lo \(c["k"] ?? "?")/\(c["n"] ?? "?")")
            close(e.ci?.1, d(c["hi"]), "wilson hi \(c["k"] ?? "?")/\(c["n"] ?? "?")")
        }
    }

    @Test func proportionsZTest() throws {
        for c in try Self.cases("proportions_ztest") {
            let r = Compare.proportions(kc: (try c.int("k1")), nc: (try c.int("n1")), kt: (try c.int("k2")), nt: (try c.int("n2")), alpha: 0.05)
            close(r.pValue, d(c["p"]), "ztest p")
        }
    }

    @Test func welch() throws {
        for c in try Self.cases("welch") {
            let r = Compare.means(control: (try c.doubles("a")), treatment: (try c.doubles("b")), alpha: (try c.double("alpha")))
            close(r.absoluteDiff, d(c["mean_diff"]), "welch diff")
            close(r.pValue, d(c["p"]), "welch p")
            close(r.ci?.0, d(c["ci_lo"]), "welch lo")
            close(r.ci?.1, d(c["ci_hi"]), "welch hi")
        }
    }

    @Test func tInterval() throws {
        for c in try Self.cases("t_interval") {
            let e = Estimators.mean((try c.doubles("values")), alpha: (try c.double("alpha")))
            close(e.value, d(c["mean"]), "mean")
            close(e.ci?.0, d(c["lo"]), "t lo")
            close(e.ci?.1, d(c["hi"]), "t hi")
        }
    }

    @Test func chiSquare() throws {
        for c in try Self.cases("chisquare") {
            close(Estimators.chiSquareGoodnessOfFit(observed: (try c.doubles("observed")), weights: (try c.doubles("weights"))), d(c["p"]), "chisquare")
        }
    }

    @Test func multipleTesting() throws {
        let methods: [String: MultipleTesting.Method] = ["holm": .holm, "bonferroni": .bonferroni, "fdr_bh": .benjaminiHochberg]
        for c in try Self.cases("multipletests") {
            let adjusted = MultipleTesting.adjust((try c.doubles("p")), method: try #require(methods[try c.string("method")]))
            for (a, b) in zip(adjusted, (try c.doubles("adjusted"))) { close(a, b, "\(c["method"] ?? "?") \(c["p"] ?? "?")") }
        }
    }

    @Test func deltaMethodRatio() throws {
        for c in try Self.cases("delta_ratio") {
            let e = Estimators.ratio(x: (try c.doubles("x")), y: (try c.doubles("y")), alpha: (try c.double("alpha")))
            close(e.value, d(c["value"]), "ratio")
            close(e.variance, d(c["variance"]), "delta variance")
            close(e.ci?.0, d(c["lo"]), "ratio lo")
            close(e.ci?.1, d(c["hi"]), "ratio hi")
        }
    }

    @Test func relativeLift() throws {
        for c in try Self.cases("relative_lift") {
            let alpha = (try c.double("alpha"))
            let ec = Estimators.ratio(x: (try c.doubles("x_c")), y: (try c.doubles("y_c")), alpha: alpha)
            let et = Estimators.ratio(x: (try c.doubles("x_t")), y: (try c.doubles("y_t")), alpha: alpha)
            let r = Compare.ratios(control: ec, treatment: et, alpha: alpha)
            close(r.relativeLift, d(c["lift"]), "lift")
            close(r.relativeCI?.0, d(c["lo"]), "lift lo")
            close(r.relativeCI?.1, d(c["hi"]), "lift hi")
        }
    }
}
