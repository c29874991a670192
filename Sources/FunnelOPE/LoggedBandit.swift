import Foundation

/// A problem reading logs or a policy file, naming the file, the line and what to do.
public struct OPEError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Logged ranking feedback: in round i the logging policy showed action (item) `actions[i]` at
/// `positions[i]` (0-based) with probability `propensities[i]` and observed `rewards[i]`.
public struct LoggedBandit: Sendable {
    public var actions: [Int32] = []
    public var positions: [Int32] = []
    public var rewards: [Double] = []
    public var propensities: [Double] = []
    /// Optional list identifier per round, for per-request evaluation policies.
    public var requestIDs: [String]? = nil
    /// Item names; `actions` index this list.
    public var items: [String] = []
    public var positionCount = 0
    /// Context features per round: sparse indices into a feature space of `featureCount` one-hot
    /// features, plus one numeric feature per (round, action) when present (`affinity[i * items + a]`).
    public var contextFeatures: [[Int32]] = []
    public var featureCount = 0
    public var affinity: [Float]? = nil

    public var count: Int { actions.count }
    public init() {}

    /// Logged rounds without context features (e.g. Funnel impressions that carry a propensity).
    /// `positions` are 0-based; `items` names the action space.
    public init(items: [String], actions: [Int32], positions: [Int32], rewards: [Double], propensities: [Double], requestIDs: [String]?) {
        self.items = items
        self.actions = actions
        self.positions = positions
        self.rewards = rewards
        self.propensities = propensities
        self.requestIDs = requestIDs
        positionCount = Int((positions.max() ?? -1) + 1)
        contextFeatures = Array(repeating: [], count: actions.count)
    }

    /// Reads the Open Bandit Dataset CSV layout: an unnamed index column, `timestamp`, `item_id`,
    /// `position` (1-based), `click`, `propensity_score`, `user_feature_*` (categorical) and
    /// `user-item_affinity_<item>` columns. `reward` names the reward column (default `click`).
    /// Item ids are used as action indices (0 … max id), as the reference pipeline does.
    /// Without `withFeatures` the context and affinity columns are skipped (IPW and SNIPW need only
    /// the action, position, reward and propensity).
    public static func readOBD(path: String, reward: String = "click", withFeatures: Bool = true) throws(OPEError) -> LoggedBandit {
        let csv = try ByteCSV(path: path, what: "pass an Open Bandit Dataset CSV (e.g. ../shared/data/obd/random/all/all.csv)")
        var header: [String] = []
        var itemCol = 0, posCol = 0, pCol = 0, rewardCol = 0
        var userCols: [Int] = []
        var affinityCols: [Int: Int] = [:]   // item id -> column
        var data = LoggedBandit()
        // Feature ids by (user_feature column, value bytes).
        var featureIndex: [String: Int32] = [:]
        var rawAffinity: [[Float]] = []
        var maxItem = -1, maxPosition = 0
        var features: [Int32] = []
        try csv.forEachLine { lineNo, cells throws(OPEError) in
            if header.isEmpty {
                header = cells.map { csv.string($0) }
                func column(_ name: String) throws(OPEError) -> Int {
                    guard let i = header.firstIndex(of: name) else {
                        throw OPEError("\(path): line 1: no '\(name)' column; the Open Bandit layout has item_id, position, click, propensity_score, user_feature_*")
                    }
                    return i
                }
                itemCol = try column("item_id"); posCol = try column("position"); pCol = try column("propensity_score")
                rewardCol = try column(reward)
                userCols = withFeatures ? header.indices.filter { header[$0].hasPrefix("user_feature_") } : []
                for (i, h) in header.enumerated() where withFeatures && h.hasPrefix("user-item_affinity_") {
                    if let item = Int(h.dropFirst("user-item_affinity_".count)) { affinityCols[item] = i }
                }
                return
            }
            guard cells.count == header.count else {
                throw OPEError("\(path): line \(lineNo): \(cells.count) cells, the header has \(header.count)")
            }
            guard let item = csv.int(cells[itemCol]), item >= 0 else {
                throw OPEError("\(path): line \(lineNo): item_id '\(csv.string(cells[itemCol]))' is not a non-negative integer")
            }
            guard let pos = csv.int(cells[posCol]), pos >= 1 else {
                throw OPEError("\(path): line \(lineNo): position '\(csv.string(cells[posCol]))' must be an integer ≥ 1")
            }
            guard let r = csv.double(cells[rewardCol]), r.isFinite else {
                throw OPEError("\(path): line \(lineNo): \(reward) '\(csv.string(cells[rewardCol]))' is not a number")
            }
            guard let p = csv.double(cells[pCol]), p > 0, p <= 1 else {
                throw OPEError("\(path): line \(lineNo): propensity_score '\(csv.string(cells[pCol]))' must be in (0, 1]")
            }
            data.actions.append(Int32(item))
            data.positions.append(Int32(pos - 1))
            data.rewards.append(r)
            data.propensities.append(p)
            maxItem = max(maxItem, item)
            maxPosition = max(maxPosition, pos)
            features.removeAll(keepingCapacity: true)
            for c in userCols {
                let key = header[c] + "=" + csv.string(cells[c])
                if let f = featureIndex[key] { features.append(f) } else {
                    let f = Int32(featureIndex.count)
                    featureIndex[key] = f
                    features.append(f)
                }
            }
            data.contextFeatures.append(features)
            if !affinityCols.isEmpty {
                var row = [Float](repeating: 0, count: affinityCols.keys.max()! + 1)
                for (item, c) in affinityCols { row[item] = Float(csv.double(cells[c]) ?? 0) }
                rawAffinity.append(row)
            }
        }
        guard !header.isEmpty else { throw OPEError("\(path): the file is empty") }
        guard maxItem >= 0 else { throw OPEError("\(path): no logged rows after the header") }
        data.items = (0...max(maxItem, affinityCols.keys.max() ?? 0)).map(String.init)
        data.positionCount = maxPosition
        data.featureCount = featureIndex.count
        if !rawAffinity.isEmpty {
            let n = data.items.count
            var flat = [Float](repeating: 0, count: rawAffinity.count * n)
            for (i, row) in rawAffinity.enumerated() { for a in 0..<min(n, row.count) { flat[i * n + a] = row[a] } }
            data.affinity = flat
        }
        return data
    }
}

/// An evaluation policy: the probability of each item at each position, for every round or per request.
public struct EvaluationPolicy: Sendable {
    /// table[position][action] for a policy that is the same in every round.
    public var table: [[Double]]
    /// Per-request probabilities keyed by request id, then by position · items + action (sparse),
    /// when the file has a `request_id` column.
    public var perRequest: [String: [Int: Double]]? = nil
    public var itemCount = 0

    public init(table: [[Double]], perRequest: [String: [Int: Double]]? = nil, itemCount: Int) {
        self.table = table
        self.perRequest = perRequest
        self.itemCount = itemCount
    }

    /// The probability of `action` at `position` in round `i` of `data`.
    @inline(__always)
    public func probability(_ data: LoggedBandit, round i: Int, action a: Int, position k: Int) -> Double {
        if let perRequest, let id = data.requestIDs?[i] { return perRequest[id]?[k * itemCount + a] ?? 0 }
        return table[k][a]
    }

    /// The actions with non-zero probability at `position` in round `i`, with their probabilities.
    public func support(_ data: LoggedBandit, round i: Int, position k: Int) -> [(action: Int, probability: Double)] {
        if let perRequest, let id = data.requestIDs?[i] {
            guard let entries = perRequest[id] else { return [] }
            return entries.compactMap { key, q in key / itemCount == k && q > 0 ? (key % itemCount, q) : nil }.sorted { $0.action < $1.action }
        }
        return table[k].enumerated().compactMap { a, q in q > 0 ? (a, q) : nil }
    }

    /// Reads `item_id,position,probability[,request_id]` (positions 1-based). Item ids must name
    /// items of the logs; each position's probabilities must sum to 1 (within 1e-6).
    public static func read(path: String, for data: LoggedBandit) throws(OPEError) -> EvaluationPolicy {
        let csv = try ByteCSV(path: path, what: "expected CSV columns item_id,position,probability[,request_id]")
        var header: [String] = []
        var ic = 0, pc = 0, qc = 0
        var rc: Int? = nil
        let index = Dictionary(uniqueKeysWithValues: data.items.enumerated().map { ($0.element, $0.offset) })
        var table = [[Double]](repeating: [Double](repeating: 0, count: data.items.count), count: data.positionCount)
        var perRequest: [String: [Int: Double]] = [:]
        try csv.forEachLine { lineNo, cells throws(OPEError) in
            if header.isEmpty {
                header = cells.map { csv.string($0) }
                guard let i = header.firstIndex(of: "item_id"), let p = header.firstIndex(of: "position"), let q = header.firstIndex(of: "probability") else {
                    throw OPEError("\(path): line 1: the header must name item_id, position and probability")
                }
                (ic, pc, qc) = (i, p, q)
                rc = header.firstIndex(of: "request_id")
                return
            }
            guard cells.count >= header.count else { throw OPEError("\(path): line \(lineNo): expected \(header.count) cells") }
            let itemID = csv.string(cells[ic])
            guard let a = index[itemID] else { throw OPEError("\(path): line \(lineNo): item_id '\(itemID)' does not occur in the logs' item space") }
            guard let pos = csv.int(cells[pc]), pos >= 1, pos <= data.positionCount else {
                throw OPEError("\(path): line \(lineNo): position '\(csv.string(cells[pc]))' must be 1…\(data.positionCount) (positions are 1-based)")
            }
            guard let q = csv.double(cells[qc]), q >= 0, q <= 1 else {
                throw OPEError("\(path): line \(lineNo): probability '\(csv.string(cells[qc]))' must be in [0, 1]")
            }
            if let rc {
                perRequest[csv.string(cells[rc]), default: [:]][(pos - 1) * data.items.count + a] = q
            } else {
                table[pos - 1][a] = q
            }
        }
        guard !header.isEmpty else { throw OPEError("\(path): the policy file is empty") }
        var sums: [String: [Double]] = rc == nil ? ["": table.map { $0.reduce(0, +) }] : [:]
        for (id, entries) in perRequest {
            var s = [Double](repeating: 0, count: data.positionCount)
            for (key, q) in entries { s[key / data.items.count] += q }
            sums[id] = s
        }
        for (id, s) in sums {
            for (k, total) in s.enumerated() where abs(total - 1) > 1e-6 && (rc == nil || total > 0) {
                throw OPEError("\(path): probabilities at position \(k + 1)\(id.isEmpty ? "" : " of request \(id)") sum to \(total), not 1")
            }
        }
        return EvaluationPolicy(table: table, perRequest: rc == nil ? nil : perRequest, itemCount: data.items.count)
    }

    /// The uniform policy over the logs' items.
    public static func uniform(for data: LoggedBandit) -> EvaluationPolicy {
        let n = data.items.count
        return EvaluationPolicy(table: [[Double]](repeating: [Double](repeating: 1.0 / Double(n), count: n), count: data.positionCount), itemCount: n)
    }
}
