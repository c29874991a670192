import Foundation
import FunnelSimulator
import Testing

/// The selection-bias world against its own truth: labels drawn from the written probabilities,
/// a purchase only after a click, every probability recomputed by hand from the row's features
/// and the world's published effects, the clicked rows converting worse than the rest (the bias
/// the conversion models must undo), the same bytes for the same seed.
@Suite struct SelectionBiasTests {
    static let world = SelectionBiasWorld()

    /// 20,000 users (about 480,000 impressions): clicks and conversions agree with the summed
    /// probabilities within 4 standard errors, overall, on clicked rows and on unclicked ones.
    @Test func labelsFollowTheTruth() {
        var rows = 0, clicks = 0.0, sumP = 0.0, varP = 0.0
        var clicked = 0, purchases = 0.0, sumQ = 0.0, varQ = 0.0
        var unclickedConversions = 0.0, sumQU = 0.0, varQU = 0.0
        var purchaseWithoutClick = 0
        Self.world.generate(users: 20_000, seed: 3) { r in
            rows += 1
            sumP += r.pClick; varP += r.pClick * (1 - r.pClick)
            if r.click { clicks += 1 }
            if r.purchase && !r.click { purchaseWithoutClick += 1 }
            if r.click {
                clicked += 1
                sumQ += r.pCVR; varQ += r.pCVR * (1 - r.pCVR)
                if r.purchase { purchases += 1 }
                #expect(r.purchase == r.convertIfClicked)
            } else {
                sumQU += r.pCVR; varQU += r.pCVR * (1 - r.pCVR)
                if r.convertIfClicked { unclickedConversions += 1 }
            }
        }
        #expect(rows > 400_000)
        #expect(purchaseWithoutClick == 0)
        #expect(abs(clicks - sumP) < 4 * varP.squareRoot(), "clicks \(clicks), expected \(sumP)")
        #expect(abs(purchases - sumQ) < 4 * varQ.squareRoot(), "purchases \(purchases), expected \(sumQ)")
        #expect(abs(unclickedConversions - sumQU) < 4 * varQU.squareRoot())
        // A plausible shop: CTR of a few percent, conversion after a click around a tenth.
        let ctr = clicks / Double(rows), cvr = purchases / Double(clicked)
        #expect(ctr > 0.02 && ctr < 0.12, "CTR \(ctr)")
        #expect(cvr > 0.04 && cvr < 0.3, "CVR \(cvr)")
    }

    /// Each probability from the row's features by the formulas of the documentation, written out
    /// here term by term with the world's published effects.
    @Test func probabilitiesAreTheDocumentedLogits() {
        let w = Self.world
        let exam = [1.0, 0.72, 0.55, 0.45, 0.38, 0.33, 0.29, 0.26]
        let deviceClick = [0.0, -0.2, 0.15], deviceConvert = [0.0, -0.3, 0.1]
        var checked = 0
        w.generate(users: 200, seed: 9) { r in
            let c = w.itemCategory[r.item], s = w.affinity[r.segment * SelectionBiasWorld.categoryCount + c]
            let price = Double(w.itemPrice[r.item])
            let clickLogit = -2.8 + w.itemClick[r.item] + w.categoryClick[c] + s + log(exam[r.position]) + deviceClick[r.device] + 0.05 * price
            let convertLogit = -1.6 + w.itemConvert[r.item] + w.categoryConvert[c] + 0.6 * s + deviceConvert[r.device] - 0.25 * price
            #expect(abs(r.pClick - 1 / (1 + exp(-clickLogit))) < 1e-12)
            #expect(abs(r.pCVR - 1 / (1 + exp(-convertLogit))) < 1e-12)
            checked += 1
        }
        #expect(checked > 1000)
    }

    /// The world's correlations as documented: item effects correlated about −0.8, and the
    /// clicked impressions convert clearly worse than the unclicked ones.
    @Test func clickedRowsMisrepresentTheEntireSpace() throws {
        let w = Self.world
        let n = Double(SelectionBiasWorld.itemCount)
        let ma = w.itemClick.reduce(0, +) / n, mq = w.itemConvert.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in 0..<SelectionBiasWorld.itemCount {
            sab += (w.itemClick[i] - ma) * (w.itemConvert[i] - mq)
            saa += (w.itemClick[i] - ma) * (w.itemClick[i] - ma)
            sbb += (w.itemConvert[i] - mq) * (w.itemConvert[i] - mq)
        }
        let rho = sab / (saa * sbb).squareRoot()
        #expect(abs(rho + 0.8) < 0.03, "item correlation \(rho)")
        var bytes: [UInt8] = []
        let summary = try w.write(users: 5000, seed: 1, { bytes += $0 })
        #expect(summary.unclickedOverClickedCVR > 1.15, "\(summary.unclickedOverClickedCVR)")
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        #expect(lines.first == Substring(SelectionBiasWorld.header))
        #expect(lines.count == summary.impressions + 1)
        #expect(lines.dropFirst().filter { $0.hasPrefix("1,") }.count == summary.clicks)
        #expect(lines.dropFirst().filter { $0.hasPrefix("1,1,") }.count == summary.purchases)
    }

    /// The same seed writes the same bytes, table and truth; another seed another table.
    @Test func sameSeedSameBytes() throws {
        func run(_ seed: UInt64) throws -> ([UInt8], [UInt8]) {
            var rows: [UInt8] = [], truth: [UInt8] = []
            _ = try SelectionBiasWorld().write(users: 300, seed: seed, { rows += $0 }, truth: { truth += $0 })
            return (rows, truth)
        }
        let a = try run(4), b = try run(4), c = try run(5)
        #expect(a.0 == b.0 && a.1 == b.1)
        #expect(a.0 != c.0)
        let truthLines = String(decoding: a.1, as: UTF8.self).split(separator: "\n")
        let rowLines = String(decoding: a.0, as: UTF8.self).split(separator: "\n")
        #expect(truthLines.count == rowLines.count)
        #expect(truthLines.first == Substring(SelectionBiasWorld.truthHeader))
    }
}
