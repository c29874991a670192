import FunnelStats
import Testing

struct MultipleTestingTests {
    // Hand-worked: p = [0.01, 0.04, 0.03, 0.005], m = 4.
    // Bonferroni: 4p, capped at 1. Holm (ascending 0.005, 0.01, 0.03, 0.04 × 4, 3, 2, 1 with a running
    // maximum): 0.02, 0.03, 0.06, 0.06. BH (descending running minimum of m/rank·p): 0.02, 0.02, 0.04, 0.04.
    let p = [0.01, 0.04, 0.03, 0.005]

    func close(_ a: [Double], _ b: [Double]) -> Bool { zip(a, b).allSatisfy { abs($0 - $1) < 1e-15 } && a.count == b.count }

    @Test func bonferroni() { #expect(close(MultipleTesting.adjust(p, method: .bonferroni), [0.04, 0.16, 0.12, 0.02])) }
    @Test func holm() { #expect(close(MultipleTesting.adjust(p, method: .holm), [0.03, 0.06, 0.06, 0.02])) }
    @Test func benjaminiHochberg() { #expect(close(MultipleTesting.adjust(p, method: .benjaminiHochberg), [0.02, 0.04, 0.04, 0.02])) }
    @Test func noneAndEmpty() {
        #expect(MultipleTesting.adjust(p, method: .none) == p)
        #expect(MultipleTesting.adjust([], method: .holm).isEmpty)
        #expect(MultipleTesting.adjust([0.6, 0.9], method: .bonferroni) == [1, 1])
    }

    @Test func chiSquareIndependenceByHand() throws {
        // [[10, 20], [20, 10]]: expected 15 everywhere, stat = 4·25/15 = 6.667, df = 1.
        let r = try #require(Estimators.chiSquareIndependence([[10, 20], [20, 10]]))
        #expect(abs(r.stat - 20.0 / 3) < 1e-12)
        #expect(r.df == 1)
        #expect(abs(r.p - 0.009823274507519247) < 1e-12)   // scipy.stats.chi2.sf(20/3, 1)
    }
}
