import Foundation
import FunnelBase

/// The selection-bias world of `funnel simulate --scenario selection-bias`: impressions with a click
/// label and a purchase label, and for every impression the true click probability and the true
/// conversion probability (the probability it would convert were it clicked), clicked or not.
///
/// Both probabilities are logistic in the features written with the row, so both can be learned:
///
///     logit pCTR = −2.8 + a_item + a_cat + 1.0·s[seg, cat] + log exam[pos] + dev_click[d] + 0.05·price
///     logit pCVR = −1.6 + q_item + q_cat + 0.6·s[seg, cat] + dev_conv[d] − 0.25·price
///
/// Items and categories draw their click and conversion effects (a, q) from normal pairs with
/// correlation −0.8 (items, sd 1.0) and −0.7 (categories, sd 0.5): clickbait items draw many clicks
/// and few purchases, niche items the reverse. The user segment's affinity for a category raises
/// both. Items are shown by a Zipf popularity (exponent 0.9 over 20,000 items, independent of the
/// effects), so most items are seldom shown and more seldom clicked; each request's eight items
/// are ranked by their click effects plus noise, as a click-optimised recommender would.
///
/// So the clicked rows a naive conversion model learns from over-represent items and categories
/// that convert badly, and hold few rows of the long tail that converts well: trained on them,
/// it under-predicts conversion over the unclicked impressions. The truth shows the gap directly
/// (`SelectionBiasSummary.unclickedOverClickedCVR`).
public struct SelectionBiasWorld: Sendable {
    public static let itemCount = 20000
    public static let categoryCount = 40
    public static let segmentCount = 16
    public static let deviceCount = 3
    public static let priceBuckets = 5
    public static let positions = 8
    public static let header = "click,purchase,user_segment,item_id,category,price_bucket,position,device"
    public static let truthHeader = "p_click,p_cvr,convert_if_clicked"

    static let clickBase = -2.8, convertBase = -1.6
    static let deviceClick = [0.0, -0.2, 0.15], deviceConvert = [0.0, -0.3, 0.1]

    public private(set) var itemCategory: [Int] = []
    public private(set) var itemPrice: [Int] = []
    public private(set) var itemClick: [Double] = []
    public private(set) var itemConvert: [Double] = []
    public private(set) var categoryClick: [Double] = []
    public private(set) var categoryConvert: [Double] = []
    /// Affinity of segment s for category c at s · categoryCount + c.
    public private(set) var affinity: [Double] = []
    var popularity: [Double] = []

    /// The catalog and the segments' tastes come from `catalogSeed`: logs with different seeds and
    /// the same catalog share one world.
    public init(catalogSeed: UInt64 = 2030) {
        var rng = SeededRandom(seed: catalogSeed)
        func pair(_ sd: Double, _ rho: Double) -> (Double, Double) {
            let z1 = rng.normal(), z2 = rng.normal()
            return (sd * z1, sd * (rho * z1 + (1 - rho * rho).squareRoot() * z2))
        }
        for _ in 0..<Self.categoryCount {
            let (a, q) = pair(0.5, -0.7)
            categoryClick.append(a)
            categoryConvert.append(q)
        }
        for _ in 0..<Self.itemCount {
            itemCategory.append(rng.int(0, Self.categoryCount - 1))
            itemPrice.append(rng.int(0, Self.priceBuckets - 1))
            let (a, q) = pair(1.0, -0.8)
            itemClick.append(a)
            itemConvert.append(q)
        }
        for _ in 0..<(Self.segmentCount * Self.categoryCount) { affinity.append(0.5 * rng.normal()) }
        // Popularity ranks are a random permutation of the items, independent of their effects.
        var order = Array(0..<Self.itemCount)
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.int(0, i)) }
        var weights = [Double](repeating: 0, count: Self.itemCount)
        for (rank, item) in order.enumerated() { weights[item] = 1 / pow(Double(rank + 1), 0.9) }
        var total = 0.0
        for w in weights { total += w; popularity.append(total) }
        for i in popularity.indices { popularity[i] /= total }
    }

    static func sigmoid(_ x: Double) -> Double { 1 / (1 + exp(-x)) }

    /// The true click probability of `item` shown at 0-based `position` to a user of `segment` on
    /// `device`.
    public func clickProbability(segment: Int, item: Int, position: Int, device: Int) -> Double {
        let c = itemCategory[item]
        let logit = Self.clickBase + itemClick[item] + categoryClick[c] + 1.0 * affinity[segment * Self.categoryCount + c]
            + log(Simulator.examination[position]) + Self.deviceClick[device] + 0.05 * Double(itemPrice[item])
        return Self.sigmoid(logit)
    }

    /// The true probability that the impression converts if clicked (position plays no part).
    public func conversionProbability(segment: Int, item: Int, device: Int) -> Double {
        let c = itemCategory[item]
        let logit = Self.convertBase + itemConvert[item] + categoryConvert[c] + 0.6 * affinity[segment * Self.categoryCount + c]
            + Self.deviceConvert[device] - 0.25 * Double(itemPrice[item])
        return Self.sigmoid(logit)
    }

    /// An item drawn by popularity.
    func drawItem(_ rng: inout SeededRandom) -> Int { inverseCDF(popularity, rng.uniform()) }

    /// One impression: its features, labels and truth.
    public struct Row: Sendable, Equatable {
        public var click: Bool
        public var purchase: Bool
        public var segment: Int
        public var item: Int
        public var position: Int
        public var device: Int
        public var pClick: Double
        public var pCVR: Double
        /// The conversion drawn for the impression whether or not it was clicked: its purchase
        /// label when clicked, the counterfactual outcome otherwise.
        public var convertIfClicked: Bool
    }

    /// Generates `users` users' impressions (each user: a segment, a device and 1 to 5 requests of
    /// eight items), calling `emit` with each row in order.
    public func generate(users: Int, seed: UInt64, _ emit: (Row) throws -> Void) rethrows {
        var rng = SeededRandom(seed: seed ^ 0x5E1E_C710_B1A5)
        var shown = [Int](repeating: 0, count: Self.positions)
        var score = [Double](repeating: 0, count: Self.positions)
        for _ in 0..<users {
            let segment = rng.int(0, Self.segmentCount - 1)
            let device = rng.int(0, Self.deviceCount - 1)
            let requests = rng.int(1, 5)
            for _ in 0..<requests {
                for k in 0..<Self.positions {
                    let item = drawItem(&rng)
                    shown[k] = item
                    score[k] = itemClick[item] + categoryClick[itemCategory[item]] + 0.7 * rng.normal()
                }
                let ranked = (0..<Self.positions).sorted { score[$0] > score[$1] }.map { shown[$0] }
                for (position, item) in ranked.enumerated() {
                    let pClick = clickProbability(segment: segment, item: item, position: position, device: device)
                    let pCVR = conversionProbability(segment: segment, item: item, device: device)
                    let click = rng.chance(pClick)
                    let converts = rng.chance(pCVR)
                    try emit(Row(click: click, purchase: click && converts, segment: segment, item: item, position: position,
                                 device: device, pClick: pClick, pCVR: pCVR, convertIfClicked: converts))
                }
            }
        }
    }

    /// Writes the impressions (CSV, `header`) through `write`, and the truth rows (CSV,
    /// `truthHeader`, one per impression in the same order) through `writeTruth` when given, a
    /// megabyte at a time; returns the summary.
    public func write(users: Int, seed: UInt64, _ write: ([UInt8]) throws -> Void,
                      truth writeTruth: (([UInt8]) throws -> Void)? = nil) throws -> SelectionBiasSummary {
        var rows: [UInt8] = Array((Self.header + "\n").utf8)
        var truth: [UInt8] = Array((Self.truthHeader + "\n").utf8)
        var summary = SelectionBiasSummary(seed: seed, users: users)
        func integer(_ v: Int, _ out: inout [UInt8]) {
            if v >= 10 { integer(v / 10, &out) }
            out.append(UInt8(0x30 + v % 10))
        }
        func probability(_ p: Double, _ out: inout [UInt8]) {
            // Nine decimals, written exactly from the rounded integer.
            let n = Int((p * 1e9).rounded())
            out.append(n >= 1_000_000_000 ? 0x31 : 0x30)
            out.append(0x2E)
            var div = 100_000_000
            let frac = n % 1_000_000_000
            while div > 0 { out.append(UInt8(0x30 + (frac / div) % 10)); div /= 10 }
        }
        try generate(users: users, seed: seed) { r in
            summary.add(r)
            rows.append(r.click ? 0x31 : 0x30); rows.append(0x2C)
            rows.append(r.purchase ? 0x31 : 0x30); rows.append(0x2C)
            rows.append(0x73); integer(r.segment, &rows); rows.append(0x2C)
            rows.append(0x69); integer(r.item, &rows); rows.append(0x2C)
            rows.append(0x63); integer(itemCategory[r.item], &rows); rows.append(0x2C)
            integer(itemPrice[r.item], &rows); rows.append(0x2C)
            integer(r.position + 1, &rows); rows.append(0x2C)
            rows.append(0x64); integer(r.device, &rows); rows.append(0x0A)
            if writeTruth != nil {
                probability(r.pClick, &truth); truth.append(0x2C)
                probability(r.pCVR, &truth); truth.append(0x2C)
                truth.append(r.convertIfClicked ? 0x31 : 0x30); truth.append(0x0A)
            }
            if rows.count >= 1 << 20 { try write(rows); rows.removeAll(keepingCapacity: true) }
            if truth.count >= 1 << 20, let writeTruth { try writeTruth(truth); truth.removeAll(keepingCapacity: true) }
        }
        try write(rows)
        if let writeTruth { try writeTruth(truth) }
        return summary
    }
}

/// What a selection-bias log holds, from its truth: the sizes, and the gap between the clicked
/// rows' conversion probability and the rest's.
public struct SelectionBiasSummary: Sendable {
    public var seed: UInt64
    public var users: Int
    public var impressions = 0
    public var clicks = 0
    public var purchases = 0
    public var sumPClick = 0.0
    /// Σ pCVR over clicked and over unclicked impressions.
    public var sumPCVRClicked = 0.0
    public var sumPCVRUnclicked = 0.0

    mutating func add(_ r: SelectionBiasWorld.Row) {
        impressions += 1
        sumPClick += r.pClick
        if r.click {
            clicks += 1
            sumPCVRClicked += r.pCVR
            if r.purchase { purchases += 1 }
        } else {
            sumPCVRUnclicked += r.pCVR
        }
    }

    /// Mean true pCVR over unclicked impressions divided by that over clicked ones: how far the
    /// clicked rows misrepresent the entire space (1 = no selection bias).
    public var unclickedOverClickedCVR: Double {
        (sumPCVRUnclicked / Double(impressions - clicks)) / (sumPCVRClicked / Double(clicks))
    }

    public func json() -> String {
        let unclicked = impressions - clicks
        return "{\"scenario\":\"selection-bias\",\"seed\":\(seed),\"simulated_users\":\(users),\"impressions\":\(impressions),"
            + "\"clicks\":\(clicks),\"purchases\":\(purchases),\"mean_p_click\":\(sumPClick / Double(max(impressions, 1))),"
            + "\"mean_p_cvr_clicked\":\(sumPCVRClicked / Double(max(clicks, 1))),\"mean_p_cvr_unclicked\":\(sumPCVRUnclicked / Double(max(unclicked, 1))),"
            + "\"unclicked_over_clicked_cvr\":\(unclickedOverClickedCVR)}\n"
    }
}
