import Foundation
import FunnelBase

/// One round as the position-bias tally takes it.
public struct TallyRound: Sendable {
    public var item: String
    /// 1-based.
    public var position: Int32
    public var ranker: String
    public var clicked: Bool
    /// Shown in uniformly shuffled order.
    public var randomized: Bool
    /// The analysed variant whose debiased click-through the round enters (rule 7); nil for the
    /// rounds of users who are not analysed, or before their first exposure.
    public var group: String?
    /// Collapsed by impression dedup (rule 4): a round of its own here all the same.
    public var collapsed: Bool

    public init(item: String, position: Int32, ranker: String, clicked: Bool, randomized: Bool, group: String?, collapsed: Bool) {
        self.item = item
        self.position = position
        self.ranker = ranker
        self.clicked = clicked
        self.randomized = randomized
        self.group = group
        self.collapsed = collapsed
    }
}

/// Everything the position-bias estimate and the debiased click-through need, added up user by
/// user, with an associative and commutative merge of integer counts, so that a log split by user
/// gives the same tally part by part as whole:
/// - rounds and clicks per (item, position, ranker) cell over positions 1…`positions`: the EM and
///   harvesting fits;
/// - for each of `bootstrap` replicates, the same cells weighted by each user's Poisson(1) weight,
///   drawn from the user id and the replicate number (not from the order of users), so the
///   bootstrap is the same whatever the split;
/// - over shuffled rounds, the sums and cross products of the users' per-position rounds and
///   clicks: the delta-method interval of the `randomized` method;
/// - rounds and clicks per (analysed variant, item, position): the debiased click-through.
///
/// Memory grows with the cells shown (items × positions × rankers), not with the log:
/// (16 + 8 × bootstrap) bytes a cell besides its key.
public struct PositionBiasTally: Sendable {
    /// Positions the estimate covers.
    public static let positions = 10

    struct Cell: Hashable, Comparable, Sendable {
        var item: String
        var position: Int32
        var ranker: String
        static func < (a: Cell, b: Cell) -> Bool { (a.item, a.position, a.ranker) < (b.item, b.position, b.ranker) }
    }

    struct GroupCell: Hashable, Sendable {
        var group: String
        var item: String
        var position: Int32
    }

    public let bootstrap: Int
    public let seed: UInt64
    var cellIndex: [Cell: Int] = [:]
    var cells: [Cell] = []
    /// Rounds and clicks per cell.
    var counts: [Int] = []
    /// Per cell, `bootstrap` weighted round counts then `bootstrap` weighted click counts.
    var replicates: [UInt32] = []
    /// Over shuffled rounds: per user x = (rounds at 1…P, clicks at 1…P); Σ x and Σ x xᵀ.
    var randomizedSums = [Int](repeating: 0, count: 2 * PositionBiasTally.positions)
    var randomizedCross = [Int](repeating: 0, count: 4 * PositionBiasTally.positions * PositionBiasTally.positions)
    var groupCells: [GroupCell: (rounds: Int, clicks: Int)] = [:]
    public private(set) var rounds = 0
    public private(set) var collapsed = 0
    public private(set) var randomizedRounds = 0
    public private(set) var maxPosition: Int32 = 0
    public private(set) var maxRandomizedPosition: Int32 = 0
    public private(set) var rankers: Set<String> = []

    public init(bootstrap: Int, seed: UInt64) {
        self.bootstrap = bootstrap
        self.seed = seed
    }

    /// A 64-bit key of a user id (FNV-1a over its UTF-8 bytes, then mixed).
    public static func userKey(_ id: String) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in id.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return mix(h)
    }

    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The user's Poisson(1) weight in each bootstrap replicate.
    func weights(user: UInt64) -> [UInt32] {
        (0..<bootstrap).map { b in
            var rng = SplitMix64(seed: Self.mix(seed ^ user) &+ UInt64(b) &* 0x9E37_79B9_7F4A_7C15)
            return UInt32(rng.poisson1())
        }
    }

    /// Adds one user's rounds; `user` is `userKey` of the user id.
    public mutating func add(user: UInt64, rounds list: [TallyRound]) {
        guard !list.isEmpty else { return }
        let p = Self.positions, b = bootstrap
        let w = weights(user: user)
        var x = [Int](repeating: 0, count: 2 * p)
        var shuffled = false
        for r in list {
            rounds += 1
            if r.collapsed { collapsed += 1 }
            rankers.insert(r.ranker)
            maxPosition = max(maxPosition, r.position)
            let k = Int(r.position) - 1
            if r.randomized {
                randomizedRounds += 1
                maxRandomizedPosition = max(maxRandomizedPosition, r.position)
                if k < p {
                    shuffled = true
                    x[k] += 1
                    if r.clicked { x[p + k] += 1 }
                }
            }
            if k < p {
                let cell = slot(Cell(item: r.item, position: r.position, ranker: r.ranker))
                counts[2 * cell] += 1
                if r.clicked { counts[2 * cell + 1] += 1 }
                let base = cell * 2 * b
                for j in 0..<b { replicates[base + j] &+= w[j] }
                if r.clicked { for j in 0..<b { replicates[base + b + j] &+= w[j] } }
            }
            if let g = r.group {
                let key = GroupCell(group: g, item: r.item, position: r.position)
                let old = groupCells[key] ?? (0, 0)
                groupCells[key] = (old.rounds + 1, old.clicks + (r.clicked ? 1 : 0))
            }
        }
        if shuffled {
            for i in 0..<(2 * p) where x[i] != 0 {
                randomizedSums[i] += x[i]
                for j in 0..<(2 * p) where x[j] != 0 { randomizedCross[i * 2 * p + j] += x[i] * x[j] }
            }
        }
    }

    mutating func slot(_ cell: Cell) -> Int {
        if let i = cellIndex[cell] { return i }
        let i = cells.count
        cellIndex[cell] = i
        cells.append(cell)
        counts.append(contentsOf: [0, 0])
        replicates.append(contentsOf: repeatElement(0, count: 2 * bootstrap))
        return i
    }

    /// The tally of the union of two disjoint sets of users.
    public func merging(_ o: PositionBiasTally) -> PositionBiasTally {
        precondition(o.bootstrap == bootstrap && o.seed == seed, "tallies with different bootstrap settings")
        var m = self
        let b = bootstrap
        for (i, cell) in o.cells.enumerated() {
            let j = m.slot(cell)
            m.counts[2 * j] += o.counts[2 * i]
            m.counts[2 * j + 1] += o.counts[2 * i + 1]
            for r in 0..<(2 * b) { m.replicates[j * 2 * b + r] &+= o.replicates[i * 2 * b + r] }
        }
        for i in randomizedSums.indices { m.randomizedSums[i] += o.randomizedSums[i] }
        for i in randomizedCross.indices { m.randomizedCross[i] += o.randomizedCross[i] }
        for (k, v) in o.groupCells {
            let old = m.groupCells[k] ?? (0, 0)
            m.groupCells[k] = (old.rounds + v.rounds, old.clicks + v.clicks)
        }
        m.rounds += o.rounds
        m.collapsed += o.collapsed
        m.randomizedRounds += o.randomizedRounds
        m.maxPosition = max(m.maxPosition, o.maxPosition)
        m.maxRandomizedPosition = max(m.maxRandomizedPosition, o.maxRandomizedPosition)
        m.rankers.formUnion(o.rankers)
        return m
    }

    /// The cells in a canonical order (item, position, ranker), with items and rankers numbered in
    /// sorted order: what the fits read, so the result does not depend on the order users came in.
    func canonicalCells(upTo p: Int) -> CellArrays {
        let order = cells.indices.filter { Int(cells[$0].position) <= p }.sorted { cells[$0] < cells[$1] }
        let itemNames = Array(Set(order.map { cells[$0].item })).sorted()
        let rankerNames = Array(Set(order.map { cells[$0].ranker })).sorted()
        let itemOf = Dictionary(uniqueKeysWithValues: itemNames.enumerated().map { ($1, Int32($0)) })
        let rankerOf = Dictionary(uniqueKeysWithValues: rankerNames.enumerated().map { ($1, Int32($0)) })
        var a = CellArrays(items: itemNames.count, rankers: rankerNames.count, order: order)
        for i in order {
            a.item.append(itemOf[cells[i].item]!)
            a.position.append(cells[i].position - 1)
            a.ranker.append(rankerOf[cells[i].ranker]!)
            a.n.append(Double(counts[2 * i]))
            a.c.append(Double(counts[2 * i + 1]))
        }
        return a
    }

    /// Replicate `r`'s weighted rounds and clicks of the cells in `order`.
    func replicate(_ r: Int, order: [Int]) -> (n: [Double], c: [Double]) {
        let b = bootstrap
        return (order.map { Double(replicates[$0 * 2 * b + r]) }, order.map { Double(replicates[$0 * 2 * b + b + r]) })
    }

    /// Rounds and clicks per position (index 0 is position 1) over positions 1…`p`: of the shuffled
    /// rounds, or of all.
    func perPosition(randomized: Bool, upTo p: Int) -> (rounds: [Int], clicks: [Int]) {
        var n = [Int](repeating: 0, count: p), c = [Int](repeating: 0, count: p)
        if randomized {
            for k in 0..<min(p, Self.positions) { n[k] = randomizedSums[k]; c[k] = randomizedSums[Self.positions + k] }
        } else {
            for (i, cell) in cells.enumerated() where Int(cell.position) <= p {
                n[Int(cell.position) - 1] += counts[2 * i]
                c[Int(cell.position) - 1] += counts[2 * i + 1]
            }
        }
        return (n, c)
    }

    /// Σ_u x_ui x_uj over the users' shuffled rounds; i, j index (rounds at 1…P, clicks at 1…P).
    func cross(_ i: Int, _ j: Int) -> Double { Double(randomizedCross[i * 2 * Self.positions + j]) }

    /// The analysed variants' rounds and clicks per (variant, item, position).
    public func groupCounts() -> [(group: String, item: String, position: Int32, rounds: Int, clicks: Int)] {
        groupCells.map { ($0.key.group, $0.key.item, $0.key.position, $0.value.rounds, $0.value.clicks) }
            .sorted { ($0.group, $0.item, $0.position) < ($1.group, $1.item, $1.position) }
    }
}

/// Cells in canonical order for the fits: item, 0-based position and ranker numbers, weights.
struct CellArrays {
    var items: Int
    var rankers: Int
    /// The tally's cell indices in this order.
    var order: [Int]
    var item: [Int32] = []
    var position: [Int32] = []
    var ranker: [Int32] = []
    var n: [Double] = []
    var c: [Double] = []
}

extension PositionBiasTally {
    /// The tally as plain values, for a summary file: cells in canonical order, with their
    /// replicate counts; the shuffled rounds' sums and cross products; the variants' counts.
    public struct Portable: Codable, Sendable, Equatable {
        public struct CellDTO: Codable, Sendable, Equatable {
            var item: String
            var position: Int32
            var ranker: String
            var rounds: Int
            var clicks: Int
            /// `bootstrap` weighted round counts, then `bootstrap` weighted click counts.
            var replicates: [UInt32]
        }
        public struct GroupDTO: Codable, Sendable, Equatable {
            var variant: String
            var item: String
            var position: Int32
            var rounds: Int
            var clicks: Int
        }
        var bootstrap: Int
        var seed: UInt64
        var rounds: Int
        var collapsed: Int
        var randomizedRounds: Int
        var maxPosition: Int32
        var maxRandomizedPosition: Int32
        var rankers: [String]
        var cells: [CellDTO]
        var randomizedSums: [Int]
        var randomizedCross: [Int]
        var groups: [GroupDTO]
        enum CodingKeys: String, CodingKey {
            case bootstrap, seed, rounds, collapsed, randomizedRounds = "randomized_rounds", maxPosition = "max_position"
            case maxRandomizedPosition = "max_randomized_position", rankers, cells, randomizedSums = "randomized_sums"
            case randomizedCross = "randomized_cross", groups
        }
    }

    public var portable: Portable {
        let b = bootstrap
        let cellList = cells.indices.sorted { cells[$0] < cells[$1] }.map { i in
            Portable.CellDTO(item: cells[i].item, position: cells[i].position, ranker: cells[i].ranker, rounds: counts[2 * i],
                             clicks: counts[2 * i + 1], replicates: Array(replicates[(i * 2 * b)..<((i + 1) * 2 * b)]))
        }
        return Portable(bootstrap: b, seed: seed, rounds: rounds, collapsed: collapsed, randomizedRounds: randomizedRounds,
                        maxPosition: maxPosition, maxRandomizedPosition: maxRandomizedPosition, rankers: rankers.sorted(),
                        cells: cellList, randomizedSums: randomizedSums, randomizedCross: randomizedCross,
                        groups: groupCounts().map { Portable.GroupDTO(variant: $0.group, item: $0.item, position: $0.position, rounds: $0.rounds, clicks: $0.clicks) })
    }

    /// The tally of its portable form; a message naming what is wrong when the parts do not fit.
    public init(portable p: Portable) throws(OPEError) {
        self.init(bootstrap: p.bootstrap, seed: p.seed)
        let P = Self.positions
        guard p.bootstrap >= 0, p.randomizedSums.count == 2 * P, p.randomizedCross.count == 4 * P * P else {
            throw OPEError("the position-bias tally has \(p.randomizedSums.count) sums and \(p.randomizedCross.count) cross products (expected \(2 * P) and \(4 * P * P))")
        }
        for c in p.cells {
            guard c.replicates.count == 2 * p.bootstrap, (1...Int32(P)).contains(c.position) else {
                throw OPEError("the position-bias cell (\(c.item), \(c.position), \(c.ranker)) has \(c.replicates.count) replicate counts for \(p.bootstrap) replicates")
            }
            let i = slot(Cell(item: c.item, position: c.position, ranker: c.ranker))
            counts[2 * i] = c.rounds
            counts[2 * i + 1] = c.clicks
            replicates.replaceSubrange((i * 2 * p.bootstrap)..<((i + 1) * 2 * p.bootstrap), with: c.replicates)
        }
        randomizedSums = p.randomizedSums
        randomizedCross = p.randomizedCross
        for g in p.groups { groupCells[GroupCell(group: g.variant, item: g.item, position: g.position)] = (g.rounds, g.clicks) }
        rounds = p.rounds
        collapsed = p.collapsed
        randomizedRounds = p.randomizedRounds
        maxPosition = p.maxPosition
        maxRandomizedPosition = p.maxRandomizedPosition
        rankers = Set(p.rankers)
    }
}

extension CellArrays {
    /// The cells with their rankers pooled into (item, position) cells, which the canonical order
    /// keeps adjacent, and each cell's pooled index: what EM fits (it has no ranker term).
    func pooledOverRankers() -> (cells: CellArrays, index: [Int]) {
        var out = CellArrays(items: items, rankers: 1, order: [])
        var index: [Int] = []
        index.reserveCapacity(item.count)
        for j in item.indices {
            if out.item.last != item[j] || out.position.last != position[j] {
                out.item.append(item[j]); out.position.append(position[j]); out.ranker.append(0)
                out.n.append(0); out.c.append(0)
            }
            out.n[out.n.count - 1] += n[j]
            out.c[out.c.count - 1] += c[j]
            index.append(out.n.count - 1)
        }
        return (out, index)
    }

    /// Per-cell weights summed into the pooled cells.
    static func pool(_ values: [Double], index: [Int], count: Int) -> [Double] {
        var out = [Double](repeating: 0, count: count)
        for (j, v) in values.enumerated() { out[index[j]] += v }
        return out
    }
}
