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
    public static func readOBD(path: String, reward: String = "click") throws(OPEError) -> LoggedBandit {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw OPEError("\(path): cannot read the file; pass an Open Bandit Dataset CSV (e.g. ../shared/data/obd/random/all/all.csv)")
        }
        var lines = text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        guard !lines.isEmpty else { throw OPEError("\(path): the file is empty") }
        let header = lines.removeFirst().split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        func column(_ name: String) throws(OPEError) -> Int {
            guard let i = header.firstIndex(of: name) else {
                throw OPEError("\(path): line 1: no '\(name)' column; the Open Bandit layout has item_id, position, click, propensity_score, user_feature_*")
            }
            return i
        }
        let itemCol = try column("item_id"), posCol = try column("position"), pCol = try column("propensity_score")
        let rewardCol = try column(reward)
        let userCols = header.indices.filter { header[$0].hasPrefix("user_feature_") }
        var affinityCols: [Int: Int] = [:]   // item id -> column
        for (i, h) in header.enumerated() where h.hasPrefix("user-item_affinity_") {
            if let item = Int(h.dropFirst("user-item_affinity_".count)) { affinityCols[item] = i }
        }
        var data = LoggedBandit()
        var featureIndex: [String: Int32] = [:]
        var rawAffinity: [[Float]] = []
        var maxItem = -1, maxPosition = 0
        for (k, line) in lines.enumerated() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false)
            let lineNo = k + 2
            guard cells.count == header.count else {
                throw OPEError("\(path): line \(lineNo): \(cells.count) cells, the header has \(header.count)")
            }
            guard let item = Int(cells[itemCol]), item >= 0 else { throw OPEError("\(path): line \(lineNo): item_id '\(cells[itemCol])' is not a non-negative integer") }
            guard let pos = Int(cells[posCol]), pos >= 1 else { throw OPEError("\(path): line \(lineNo): position '\(cells[posCol])' must be an integer ≥ 1") }
            guard let r = Double(cells[rewardCol]), r.isFinite else { throw OPEError("\(path): line \(lineNo): \(reward) '\(cells[rewardCol])' is not a number") }
            guard let p = Double(cells[pCol]), p > 0, p <= 1 else { throw OPEError("\(path): line \(lineNo): propensity_score '\(cells[pCol])' must be in (0, 1]") }
            data.actions.append(Int32(item))
            data.positions.append(Int32(pos - 1))
            data.rewards.append(r)
            data.propensities.append(p)
            maxItem = max(maxItem, item)
            maxPosition = max(maxPosition, pos)
            var features: [Int32] = []
            for c in userCols {
                let key = header[c] + "=" + cells[c]
                if let f = featureIndex[key] { features.append(f) } else {
                    let f = Int32(featureIndex.count)
                    featureIndex[key] = f
                    features.append(f)
                }
            }
            data.contextFeatures.append(features)
            if !affinityCols.isEmpty {
                var row = [Float](repeating: 0, count: affinityCols.keys.max()! + 1)
                for (item, c) in affinityCols { row[item] = Float(cells[c]) ?? 0 }
                rawAffinity.append(row)
            }
        }
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

    /// The probability of `action` at `position` in round `i` of `data`.
    @inline(__always)
    public func probability(_ data: LoggedBandit, round i: Int, action a: Int, position k: Int) -> Double {
        if let perRequest, let id = data.requestIDs?[i] { return perRequest[id]?[k * itemCount + a] ?? 0 }
        return table[k][a]
    }

    /// Reads `item_id,position,probability[,request_id]` (positions 1-based). Item ids must name
    /// items of the logs; each position's probabilities must sum to 1 (within 1e-6).
    public static func read(path: String, for data: LoggedBandit) throws(OPEError) -> EvaluationPolicy {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw OPEError("\(path): cannot read the policy file; expected CSV columns item_id,position,probability[,request_id]")
        }
        var lines = text.split(omittingEmptySubsequences: true, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        guard !lines.isEmpty else { throw OPEError("\(path): the policy file is empty") }
        let header = lines.removeFirst().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let ic = header.firstIndex(of: "item_id"), let pc = header.firstIndex(of: "position"), let qc = header.firstIndex(of: "probability") else {
            throw OPEError("\(path): line 1: the header must name item_id, position and probability")
        }
        let rc = header.firstIndex(of: "request_id")
        let index = Dictionary(uniqueKeysWithValues: data.items.enumerated().map { ($0.element, $0.offset) })
        let empty = [[Double]](repeating: [Double](repeating: 0, count: data.items.count), count: data.positionCount)
        var table = empty
        var perRequest: [String: [Int: Double]] = [:]
        for (k, line) in lines.enumerated() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let lineNo = k + 2
            guard cells.count >= header.count else { throw OPEError("\(path): line \(lineNo): expected \(header.count) cells") }
            guard let a = index[cells[ic]] else { throw OPEError("\(path): line \(lineNo): item_id '\(cells[ic])' does not occur in the logs' item space") }
            guard let pos = Int(cells[pc]), pos >= 1, pos <= data.positionCount else {
                throw OPEError("\(path): line \(lineNo): position '\(cells[pc])' must be 1…\(data.positionCount) (positions are 1-based)")
            }
            guard let q = Double(cells[qc]), q >= 0, q <= 1 else { throw OPEError("\(path): line \(lineNo): probability '\(cells[qc])' must be in [0, 1]") }
            if let rc {
                perRequest[cells[rc], default: [:]][(pos - 1) * data.items.count + a] = q
            } else {
                table[pos - 1][a] = q
            }
        }
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
