import Foundation
import FunnelBase
import FunnelStats

/// One kept impression for position-bias estimation.
public struct ClickRecord: Sendable {
    /// Resampling unit of the intervals (the user).
    public var cluster: Int32
    public var item: Int32
    /// 1-based.
    public var position: Int32
    public var clicked: Bool
    /// Shown in uniformly shuffled order (the `randomized` method uses only these).
    public var randomized: Bool
    /// Which ranker placed the item (the `harvesting` method pairs different rankers).
    public var ranker: Int32

    public init(cluster: Int32, item: Int32, position: Int32, clicked: Bool, randomized: Bool, ranker: Int32) {
        self.cluster = cluster
        self.item = item
        self.position = position
        self.clicked = clicked
        self.randomized = randomized
        self.ranker = ranker
    }
}

/// Examination probability per position relative to position 1, under the position-based click
/// model P(click | item i at position k) = θ_k · γ_i:
/// - `randomized`: on shuffled traffic the item is independent of the position, so
///   θ_k/θ_1 = CTR_k / CTR_1; interval by the delta method on per-user sums (log scale).
/// - `em`: maximum likelihood of θ and a relevance γ per item by expectation–maximisation on all
///   traffic (regression-EM with the item as the relevance feature); percentile interval by a
///   Poisson bootstrap over users.
/// - `harvesting`: the same item shown at different positions by different rankers; for positions
///   k, k′ the ratio Σ w·CTR(i, k) / Σ w·CTR(i, k′) over such items (w = n·n′/(n + n′)) estimates
///   θ_k/θ_k′, and log θ is fitted to all pairs by weighted least squares; bootstrap interval.
public enum PositionBias {
    public enum Method: String, CaseIterable, Sendable {
        case randomized, em, harvesting
    }

    public struct Estimate: Sendable {
        public var method: Method
        /// θ_k/θ_1 for positions 1…P (index 0 is position 1).
        public var propensities: [Double]
        public var intervals: [(Double, Double)?]
        /// Impressions and clicks per position among the records the method used.
        public var impressions: [Int]
        public var clicks: [Int]
        /// CTR_k / CTR_1 over all records: the naive estimate, confounded with the rankers' choices.
        public var naive: [Double]
        public var recordsUsed: Int
        public var warnings: [String]
    }

    /// Estimates θ_k/θ_1 for positions 1…`maxPosition` (fewer when the data stop earlier) from
    /// click records, each cluster (user) weighted in the bootstrap by its own Poisson(1) draws.
    public static func estimate(_ records: [ClickRecord], method: Method, maxPosition: Int = 10,
                                bootstrap: Int = 200, alpha: Double = 0.05, seed: UInt64 = 1) throws(OPEError) -> Estimate {
        var tally = PositionBiasTally(bootstrap: method == .randomized ? 0 : bootstrap, seed: seed)
        var byCluster: [Int32: [TallyRound]] = [:]
        var order: [Int32] = []
        for r in records {
            if byCluster[r.cluster] == nil { order.append(r.cluster) }
            byCluster[r.cluster, default: []].append(TallyRound(item: String(r.item), position: r.position, ranker: String(r.ranker),
                                                                clicked: r.clicked, randomized: r.randomized, group: nil, collapsed: false))
        }
        for c in order { tally.add(user: PositionBiasTally.mix(UInt64(UInt32(bitPattern: c))), rounds: byCluster[c]!) }
        return try estimate(tally, method: method, maxPosition: maxPosition, alpha: alpha)
    }

    /// Estimates θ_k/θ_1 for positions 1…`maxPosition` (at most `PositionBiasTally.positions`;
    /// fewer when the data stop earlier) from a tally; the bootstrap's replicates are the tally's.
    public static func estimate(_ t: PositionBiasTally, method: Method, maxPosition: Int = 10, alpha: Double = 0.05) throws(OPEError) -> Estimate {
        let randomized = method == .randomized
        let usedCount = randomized ? t.randomizedRounds : t.rounds
        guard usedCount > 0 else {
            throw OPEError(randomized
                ? "no kept impression was shown in randomized order; mark shuffled traffic (see --randomized) or use --method em"
                : "no kept impression to estimate position bias from")
        }
        let seen = min(maxPosition, PositionBiasTally.positions, Int(max(1, randomized ? t.maxRandomizedPosition : t.maxPosition)))
        var (imps, clicks) = t.perPosition(randomized: randomized, upTo: seen)
        var warnings: [String] = []
        // Positions from the first one without a click on are not estimated.
        let p = clicks.firstIndex(of: 0) ?? seen
        if p < seen {
            warnings.append("positions \(p + 1)–\(seen) are not estimated: position \(p + 1) has no click among the \(imps[p]) impressions used")
            imps.removeLast(seen - p)
            clicks.removeLast(seen - p)
        }
        guard p >= 2 else {
            throw OPEError(p == 0 ? "no click at position 1 among the \(usedCount) impressions used: the propensities are relative to position 1"
                                  : "position bias needs clicks at two positions or more; only position 1 has clicks")
        }
        let (allImps, allClicks) = t.perPosition(randomized: false, upTo: p)
        let base = allImps[0] > 0 && allClicks[0] > 0 ? Double(allClicks[0]) / Double(allImps[0]) : .nan
        let naive = (0..<p).map { allImps[$0] > 0 ? (Double(allClicks[$0]) / Double(allImps[$0])) / base : .nan }
        for k in 1..<p where clicks[k] < 30 {
            warnings.append("position \(k + 1) has \(clicks[k]) clicks among the impressions used: its propensity is very uncertain")
        }
        let z = Distributions.normalQuantile(1 - alpha / 2)
        if randomized {
            let (theta, ci) = randomizedRatios(t, positions: p, z: z)
            return Estimate(method: method, propensities: theta, intervals: ci, impressions: imps, clicks: clicks, naive: naive,
                            recordsUsed: usedCount, warnings: warnings)
        }
        if method == .harvesting && t.rankers.count < 2 {
            throw OPEError("harvesting needs impressions from at least two rankers (context.ranker or the impression's variant); found one")
        }
        let cells = t.canonicalCells(upTo: p)
        // EM has no ranker term: it fits the (item, position) cells, rankers pooled.
        let (pooled, poolIndex) = cells.pooledOverRankers()
        let full = method == .em ? emFit(pooled, n: pooled.n, c: pooled.c, positions: p) : nil
        // Bootstrap refits start from the full fit.
        let fit: @Sendable ([Double], [Double]) -> [Double]? = { n, c in
            method == .em
                ? emFit(pooled, n: CellArrays.pool(n, index: poolIndex, count: pooled.n.count), c: CellArrays.pool(c, index: poolIndex, count: pooled.n.count),
                        positions: p, start: full?.state, tolerance: 1e-7, maxIterations: 3000)?.ratios
                : harvestFit(cells, n: n, c: c, positions: p)
        }
        guard let theta = method == .em ? full?.ratios : fit(cells.n, cells.c) else {
            throw OPEError(method == .em ? "the EM fit did not converge" : "no item was shown at two positions by two rankers: nothing to harvest")
        }
        var intervals = [(Double, Double)?](repeating: nil, count: p)
        intervals[0] = (1, 1)
        if t.bootstrap >= 10 {
            let draws = ResultSlots<[Double]?>(count: t.bootstrap)
            DispatchQueue.concurrentPerform(iterations: t.bootstrap) { b in
                let (n, c) = t.replicate(b, order: cells.order)
                draws.set(b, fit(n, c))
            }
            let replicates = draws.values().compactMap { $0 }
            if replicates.count >= 10 {
                for k in 1..<p {
                    let v = replicates.map { $0[k] }.filter(\.isFinite).sorted()
                    if v.count >= 10 { intervals[k] = (quantile(v, alpha / 2), quantile(v, 1 - alpha / 2)) }
                }
            }
        }
        return Estimate(method: method, propensities: theta, intervals: intervals, impressions: imps, clicks: clicks, naive: naive,
                        recordsUsed: usedCount, warnings: warnings)
    }

    /// (CTR_k / CTR_1) over the shuffled rounds with a delta-method interval on the log scale from
    /// the users' sums: Var log r_k ≈ Σ_u (c_uk/C_k − n_uk/N_k − c_u1/C_1 + n_u1/N_1)², written as
    /// the quadratic form aᵀ (Σ_u x_u x_uᵀ) a of the tally's cross products.
    static func randomizedRatios(_ t: PositionBiasTally, positions p: Int, z: Double) -> ([Double], [(Double, Double)?]) {
        let P = PositionBiasTally.positions
        let nk = (0..<p).map { Double(t.randomizedSums[$0]) }, ck = (0..<p).map { Double(t.randomizedSums[P + $0]) }
        var theta = [Double](repeating: .nan, count: p)
        var ci = [(Double, Double)?](repeating: nil, count: p)
        theta[0] = 1
        ci[0] = (1, 1)
        for k in 1..<p where nk[k] > 0 && ck[k] > 0 {
            theta[k] = (ck[k] / nk[k]) / (ck[0] / nk[0])
            // Coordinates (clicks at k, rounds at k, clicks at 1, rounds at 1) and their weights.
            let index = [P + k, k, P, 0], a = [1 / ck[k], -1 / nk[k], -1 / ck[0], 1 / nk[0]]
            var v = 0.0
            for i in 0..<4 { for j in 0..<4 { v += a[i] * a[j] * t.cross(index[i], index[j]) } }
            let se = max(v, 0).squareRoot()
            ci[k] = (theta[k] * exp(-z * se), theta[k] * exp(z * se))
        }
        return (theta, ci)
    }

    /// Examination (per position) and relevance (per item) of an EM fit.
    struct EMState: Sendable {
        var theta: [Double]
        var gamma: [Double]
    }

    /// EM for the position-based model on (item, position) cells with round and click weights
    /// `n`, `c`, from `start` when given; returns θ_k/θ_1 and the fitted state.
    /// Stops when no ratio moves by more than `tolerance` in an iteration.
    static func emFit(_ cells: CellArrays, n: [Double], c: [Double], positions p: Int, start: EMState? = nil,
                      tolerance: Double = 1e-10, maxIterations: Int = 20_000) -> (ratios: [Double], state: EMState)? {
        let items = cells.items
        let cellItem = cells.item, cellPos = cells.position
        var nk = [Double](repeating: 0, count: p), ck = [Double](repeating: 0, count: p)
        var ni = [Double](repeating: 0, count: items), ci = [Double](repeating: 0, count: items)
        for j in n.indices {
            nk[Int(cellPos[j])] += n[j]; ck[Int(cellPos[j])] += c[j]
            ni[Int(cellItem[j])] += n[j]; ci[Int(cellItem[j])] += c[j]
        }
        guard nk[0] > 0, ck[0] > 0 else { return nil }
        var theta: [Double], gamma: [Double]
        if let start {
            theta = start.theta
            gamma = start.gamma
        } else {
            // θ from the naive ratios (halved, inside (0, 1)), γ from each item's click-through.
            let ctr1 = ck[0] / nk[0]
            theta = (0..<p).map { k in nk[k] > 0 ? min(0.95, max(0.01, 0.5 * (ck[k] / nk[k]) / ctr1)) : 0.5 }
            let meanTheta = theta.reduce(0, +) / Double(p)
            gamma = (0..<items).map { i in ni[i] > 0 ? min(0.95, max(0.001, (ci[i] + 0.5) / (ni[i] + 1) / meanTheta)) : 0.5 }
        }
        var eSum = [Double](repeating: 0, count: p), rSum = [Double](repeating: 0, count: items)
        var previous = theta.map { $0 / theta[0] }
        for iteration in 0..<maxIterations {
            for k in 0..<p { eSum[k] = 0 }
            for i in 0..<items { rSum[i] = 0 }
            for j in n.indices {
                let unclicked = n[j] - c[j]
                if unclicked <= 0 { continue }
                let k = Int(cellPos[j]), i = Int(cellItem[j])
                let t = theta[k], g = gamma[i]
                let scale = unclicked / (1 - t * g)
                eSum[k] += scale * t * (1 - g)
                rSum[i] += scale * (1 - t) * g
            }
            for k in 0..<p where nk[k] > 0 { theta[k] = (ck[k] + eSum[k]) / nk[k] }
            for i in 0..<items where ni[i] > 0 { gamma[i] = (ci[i] + rSum[i]) / ni[i] }
            var change = 0.0
            for k in 0..<p {
                let r = theta[k] / theta[0]
                change = max(change, abs(r - previous[k]))
                previous[k] = r
            }
            if iteration > 3 && change < tolerance { break }
        }
        return previous.allSatisfy(\.isFinite) ? (previous, EMState(theta: theta, gamma: gamma)) : nil
    }

    /// Intervention harvesting on (item, position, ranker) cells with round and click weights
    /// `n`, `c`; returns θ_k/θ_1.
    static func harvestFit(_ cellArrays: CellArrays, n cellN: [Double], c cellC: [Double], positions p: Int) -> [Double]? {
        let items = cellArrays.items, rankers = cellArrays.rankers
        let stride = p * rankers
        var n = [Double](repeating: 0, count: items * stride), c = [Double](repeating: 0, count: items * stride)
        for j in cellN.indices where cellN[j] > 0 {
            let x = Int(cellArrays.item[j]) * stride + Int(cellArrays.position[j]) * rankers + Int(cellArrays.ranker[j])
            n[x] += cellN[j]
            c[x] += cellC[j]
        }
        // a[k][k'] = Σ w·CTR(i, k), b[k][k'] = Σ w·CTR(i, k') over pairs of cells of one item at
        // positions k < k' from different rankers.
        var a = [Double](repeating: 0, count: p * p), b = [Double](repeating: 0, count: p * p)
        var cells: [(k: Int, r: Int, n: Double, ctr: Double)] = []
        for i in 0..<items {
            cells.removeAll(keepingCapacity: true)
            for k in 0..<p {
                for r in 0..<rankers {
                    let j = i * stride + k * rankers + r
                    if n[j] > 0 { cells.append((k, r, n[j], c[j] / n[j])) }
                }
            }
            if cells.count < 2 { continue }
            for x in 0..<cells.count {
                for y in (x + 1)..<cells.count {
                    let u = cells[x], v = cells[y]
                    guard u.k != v.k, u.r != v.r else { continue }
                    let w = u.n * v.n / (u.n + v.n)
                    let (lo, hi) = u.k < v.k ? (u, v) : (v, u)
                    a[lo.k * p + hi.k] += w * lo.ctr
                    b[lo.k * p + hi.k] += w * hi.ctr
                }
            }
        }
        // Weighted least squares for x_k = log θ_k (x_0 = 0): x_k' − x_k = log(b/a), weight 1/(1/a + 1/b),
        // over the positions that some harvested pair links to position 1 (the others stay NaN).
        var linked = [Bool](repeating: false, count: p)
        linked[0] = true
        var grew = true
        while grew {
            grew = false
            for k in 0..<p {
                for k2 in (k + 1)..<p where a[k * p + k2] > 0 && b[k * p + k2] > 0 && linked[k] != linked[k2] {
                    linked[k] = true; linked[k2] = true; grew = true
                }
            }
        }
        let unknowns = (1..<p).filter { linked[$0] }
        guard !unknowns.isEmpty else { return nil }
        var slot = [Int](repeating: -1, count: p)
        for (j, k) in unknowns.enumerated() { slot[k] = j }
        let m = unknowns.count
        var normal = [Double](repeating: 0, count: m * m), rhs = [Double](repeating: 0, count: m)
        for k in 0..<p where linked[k] {
            for k2 in (k + 1)..<p where linked[k2] {
                let av = a[k * p + k2], bv = b[k * p + k2]
                guard av > 0, bv > 0 else { continue }
                let y = log(bv / av), wt = 1 / (1 / av + 1 / bv)
                // residual = x_k2 − x_k − y, with x_0 fixed at 0.
                let i2 = slot[k2], i1 = slot[k]
                normal[i2 * m + i2] += wt
                rhs[i2] += wt * y
                if i1 >= 0 {
                    normal[i1 * m + i1] += wt
                    normal[i1 * m + i2] -= wt
                    normal[i2 * m + i1] -= wt
                    rhs[i1] -= wt * y
                }
            }
        }
        guard let x = solve(normal, rhs, m) else { return nil }
        var theta = [Double](repeating: .nan, count: p)
        theta[0] = 1
        for (j, k) in unknowns.enumerated() { theta[k] = exp(x[j]) }
        return theta
    }

    /// Gaussian elimination with partial pivoting; nil when singular.
    static func solve(_ matrix: [Double], _ vector: [Double], _ m: Int) -> [Double]? {
        var a = matrix, b = vector
        for col in 0..<m {
            var pivot = col
            for r in col..<m where abs(a[r * m + col]) > abs(a[pivot * m + col]) { pivot = r }
            guard abs(a[pivot * m + col]) > 1e-12 else { return nil }
            if pivot != col {
                for j in 0..<m { a.swapAt(col * m + j, pivot * m + j) }
                b.swapAt(col, pivot)
            }
            for r in (col + 1)..<m {
                let f = a[r * m + col] / a[col * m + col]
                if f == 0 { continue }
                for j in col..<m { a[r * m + j] -= f * a[col * m + j] }
                b[r] -= f * b[col]
            }
        }
        var x = [Double](repeating: 0, count: m)
        for r in stride(from: m - 1, through: 0, by: -1) {
            var s = b[r]
            for j in (r + 1)..<m { s -= a[r * m + j] * x[j] }
            x[r] = s / a[r * m + r]
        }
        return x
    }

    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        let h = q * Double(sorted.count - 1)
        let lo = Int(h.rounded(.down)), hi = min(lo + 1, sorted.count - 1)
        return sorted[lo] + (h - Double(lo)) * (sorted[hi] - sorted[lo])
    }

    // MARK: debiased click-through

    /// Inverse-propensity weight of a click at 1-based `position`: 1/max(θ, floor); positions
    /// beyond the estimated ones take the floor.
    @inline(__always)
    public static func weight(position: Int, propensities: [Double], floor: Double) -> Double {
        let theta = position >= 1 && position <= propensities.count && propensities[position - 1].isFinite ? propensities[position - 1] : floor
        return 1 / max(theta, floor)
    }

    /// Naive and inverse-propensity-weighted click-through of a group of impressions:
    /// naive = clicks / impressions; ips = Σ_clicks 1/max(θ_position, floor) / impressions, the
    /// click-through the items would have if every impression were examined like position 1.
    public struct DebiasedCTR: Sendable, Equatable {
        public var impressions = 0
        public var clicks = 0
        public var weightedClicks = 0.0
        public init() {}
        public var naive: Double { impressions > 0 ? Double(clicks) / Double(impressions) : .nan }
        public var ips: Double { impressions > 0 ? weightedClicks / Double(impressions) : .nan }
        /// Adds `rounds` impressions at `position`, `clicks` of them clicked.
        public mutating func add(position: Int, rounds: Int, clicks c: Int, propensities: [Double], floor: Double) {
            impressions += rounds
            clicks += c
            if c > 0 { weightedClicks += Double(c) * weight(position: position, propensities: propensities, floor: floor) }
        }
        public mutating func add(position: Int, clicked: Bool, propensities: [Double], floor: Double) {
            impressions += 1
            if clicked {
                clicks += 1
                weightedClicks += weight(position: position, propensities: propensities, floor: floor)
            }
        }
    }
}
