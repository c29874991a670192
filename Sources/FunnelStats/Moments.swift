import Foundation

/// A double-double number hi + lo (|lo| ≤ ulp(hi)/2): about 32 significant digits. Sums of
/// per-user values kept this way do not depend, to a double's precision, on the order or the split
/// in which they were added (Dekker 1971; Hida, Li, Bailey 2001 for the operations).
public struct DoubleDouble: Sendable, Equatable, Hashable, Codable {
    public var hi: Double
    public var lo: Double

    public init(_ x: Double = 0) { hi = x; lo = 0 }
    init(hi: Double, lo: Double) { self.hi = hi; self.lo = lo }

    /// The nearest double.
    public var value: Double { hi + lo }

    @inline(__always) static func twoSum(_ a: Double, _ b: Double) -> (Double, Double) {
        let s = a + b, bb = s - a
        return (s, (a - (s - bb)) + (b - bb))
    }

    @inline(__always) static func quickTwoSum(_ a: Double, _ b: Double) -> DoubleDouble {
        let s = a + b
        return DoubleDouble(hi: s, lo: b - (s - a))
    }

    /// Adds a double.
    @inline(__always) public mutating func add(_ x: Double) {
        let (s, e) = DoubleDouble.twoSum(hi, x)
        self = DoubleDouble.quickTwoSum(s, e + lo)
    }

    public static func + (a: DoubleDouble, b: DoubleDouble) -> DoubleDouble {
        let (s, e) = twoSum(a.hi, b.hi)
        let (t, f) = twoSum(a.lo, b.lo)
        let u = quickTwoSum(s, e + t)
        return quickTwoSum(u.hi, u.lo + f)
    }

    public static prefix func - (a: DoubleDouble) -> DoubleDouble { DoubleDouble(hi: -a.hi, lo: -a.lo) }
    public static func - (a: DoubleDouble, b: DoubleDouble) -> DoubleDouble { a + (-b) }

    public static func * (a: DoubleDouble, b: Double) -> DoubleDouble {
        let p = a.hi * b
        let e = fma(a.hi, b, -p)
        return quickTwoSum(p, e + a.lo * b)
    }

    public static func * (a: DoubleDouble, b: DoubleDouble) -> DoubleDouble {
        let p = a.hi * b.hi
        let e = fma(a.hi, b.hi, -p) + (a.hi * b.lo + a.lo * b.hi)
        return quickTwoSum(p, e)
    }

    public static func / (a: DoubleDouble, b: Double) -> DoubleDouble {
        let q1 = a.hi / b
        let r = a - DoubleDouble(q1) * b
        return quickTwoSum(q1, r.hi / b)
    }

    public static func += (a: inout DoubleDouble, b: DoubleDouble) { a = a + b }
}

/// A linear combination c + Σ aᵢ·xᵢ of a unit's quantities xᵢ.
public struct Combination: Sendable {
    public var terms: [(index: Int, coefficient: Double)]
    public var constant: Double

    public init(_ terms: [(index: Int, coefficient: Double)], constant: Double = 0) {
        self.terms = terms
        self.constant = constant
    }

    /// The quantity xᵢ alone.
    public static func quantity(_ i: Int) -> Combination { Combination([(i, 1)]) }

    /// c·self.
    public func scaled(_ c: Double) -> Combination { Combination(terms.map { ($0.index, $0.coefficient * c) }, constant: constant * c) }

    /// self − other.
    public func minus(_ other: Combination) -> Combination {
        Combination(terms + other.terms.map { ($0.index, -$0.coefficient) }, constant: constant - other.constant)
    }
}

/// The sufficient statistics of k quantities per unit (user) over a group of units: the count n,
/// every Σxᵢ and every Σxᵢxⱼ (i ≤ j), as double-double sums. Merging is associative and
/// commutative (up to the last bits of a double-double), so a group can be summed in parts on any
/// number of workers; every mean, variance and covariance of linear combinations of the quantities
/// follows exactly (the delta method, Welch, CUPED).
public struct Moments: Sendable, Equatable {
    public let dimension: Int
    public private(set) var count: Int = 0
    /// Σxᵢ for i < k, then Σxᵢxⱼ for i ≤ j in row order.
    public private(set) var sums: [DoubleDouble]

    public init(dimension: Int) {
        self.dimension = dimension
        sums = [DoubleDouble](repeating: DoubleDouble(), count: dimension + dimension * (dimension + 1) / 2)
    }

    /// Rebuilds moments from their stored parts (a summary file); nil when the sizes disagree.
    public init?(dimension: Int, count: Int, sums: [DoubleDouble]) {
        guard dimension > 0, count >= 0, sums.count == dimension + dimension * (dimension + 1) / 2 else { return nil }
        self.dimension = dimension
        self.count = count
        self.sums = sums
    }

    @inline(__always) func productIndex(_ i: Int, _ j: Int) -> Int {
        let (a, b) = i <= j ? (i, j) : (j, i)
        return dimension + a * dimension - a * (a - 1) / 2 + (b - a)
    }

    /// Adds one unit's quantities (`x.count == dimension`); zeros cost nothing.
    public mutating func add(_ x: UnsafeBufferPointer<Double>) {
        precondition(x.count == dimension)
        count += 1
        withUnsafeTemporaryAllocation(of: Int.self, capacity: dimension) { nz in
            var m = 0
            for i in 0..<dimension where x[i] != 0 { nz[m] = i; m += 1 }
            sums.withUnsafeMutableBufferPointer { s in
                for a in 0..<m {
                    let i = nz[a], xi = x[i]
                    s[i].add(xi)
                    let row = dimension + i * dimension - i * (i - 1) / 2 - i
                    for b in a..<m {
                        let j = nz[b]
                        // x_i·x_j as an exact double-double, then added.
                        let p = xi * x[j]
                        s[row + j].add(p)
                        let e = fma(xi, x[j], -p)
                        if e != 0 { s[row + j].add(e) }
                    }
                }
            }
        }
    }

    public mutating func add(_ x: [Double]) { x.withUnsafeBufferPointer { add($0) } }

    /// Adds another group's moments.
    public mutating func merge(_ other: Moments) {
        precondition(other.dimension == dimension)
        count += other.count
        for i in sums.indices { sums[i] += other.sums[i] }
    }

    /// Removes a subgroup's moments (which must have been added).
    public mutating func subtract(_ other: Moments) {
        precondition(other.dimension == dimension)
        count -= other.count
        for i in sums.indices { sums[i] = sums[i] - other.sums[i] }
    }

    /// Σxᵢ.
    public func sum(_ i: Int) -> Double { sums[i].value }

    /// The moments of the first k quantities alone.
    public func prefix(_ k: Int) -> Moments {
        var out = Moments(dimension: k)
        out.count = count
        for i in 0..<k {
            out.sums[i] = sums[i]
            for j in i..<k { out.sums[out.productIndex(i, j)] = sums[productIndex(i, j)] }
        }
        return out
    }

    /// Σ over units of the combination.
    public func total(_ c: Combination) -> DoubleDouble {
        var s = DoubleDouble(c.constant) * Double(count)
        for t in c.terms { s += sums[t.index] * t.coefficient }
        return s
    }

    /// The mean of the combination over the units; nil without units.
    public func mean(_ c: Combination) -> Double? {
        count > 0 ? (total(c) / Double(count)).value : nil
    }

    /// Σ (a − ā)(b − b̄) over the units: the centred cross product of two combinations.
    public func centredCross(_ a: Combination, _ b: Combination) -> Double {
        guard count > 0 else { return 0 }
        var sab = DoubleDouble()
        for s in a.terms {
            for t in b.terms { sab += sums[productIndex(s.index, t.index)] * (s.coefficient * t.coefficient) }
        }
        // The constants cancel in the centred product; only the linear parts remain.
        let la = Combination(a.terms), lb = Combination(b.terms)
        return (sab - total(la) * total(lb) / Double(count)).value
    }

    /// Σ (a − ā)² over the units.
    public func centredSquares(_ a: Combination) -> Double { max(0, centredCross(a, a)) }
}

extension Estimators {
    /// `ratio(x:y:alpha:)` from moments: R = Σxᵢ/Σxⱼ with the delta-method variance.
    public static func ratio(_ m: Moments, numerator x: Int, denominator y: Int, alpha: Double) -> Estimate {
        let n = m.count
        let sx = m.sum(x), sy = m.sum(y)
        guard n > 0, sy != 0 else { return .undefined }
        let r = sx / sy
        guard n >= 2 else { return Estimate(value: r, ci: nil, variance: nil) }
        let ss = m.centredSquares(Combination([(x, 1), (y, -r)]))
        let ybar = sy / Double(n)
        let variance = ss / Double(n - 1) / (Double(n) * ybar * ybar)
        guard variance > 0 else { return Estimate(value: r, ci: nil, variance: 0) }
        let half = Distributions.normalQuantile(1 - alpha / 2) * variance.squareRoot()
        return Estimate(value: r, ci: (r - half, r + half), variance: variance)
    }

    /// `mean(_:alpha:)` of quantity i from moments.
    public static func mean(_ m: Moments, _ i: Int, alpha: Double) -> Estimate {
        let n = m.count
        guard n > 0 else { return .undefined }
        let mean = m.mean(.quantity(i))!
        guard n >= 2 else { return Estimate(value: mean, ci: nil, variance: nil) }
        let variance = m.centredSquares(.quantity(i)) / Double(n - 1) / Double(n)
        guard variance > 0 else { return Estimate(value: mean, ci: nil, variance: 0) }
        let half = Distributions.studentTQuantile(1 - alpha / 2, df: Double(n - 1)) * variance.squareRoot()
        return Estimate(value: mean, ci: (mean - half, mean + half), variance: variance)
    }
}

extension Compare {
    /// `means(control:treatment:alpha:)` of quantity i from moments.
    public static func means(control a: Moments, treatment b: Moments, quantity i: Int, alpha: Double) -> Difference {
        means(control: Estimators.mean(a, i, alpha: alpha), count: a.count, treatment: Estimators.mean(b, i, alpha: alpha), count: b.count, alpha: alpha)
    }
}
