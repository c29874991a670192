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

/// An exact sum in fixed point: a 256-bit two's-complement integer (four 64-bit limbs, least
/// significant first) in units of 2⁻¹²⁰. Adding, merging and subtracting are integer operations,
/// so a sum does not depend on the order or the split of its terms at all: the same terms give the
/// same bits. Values (`Moments`) are held to 2⁻⁶⁰ and below 2⁶⁰, their products exactly.
public struct FixedSum: Sendable, Equatable, Hashable {
    public var l0: UInt64 = 0, l1: UInt64 = 0, l2: UInt64 = 0, l3: UInt64 = 0

    public init() {}
    public init(limbs: [UInt64]) { l0 = limbs[0]; l1 = limbs[1]; l2 = limbs[2]; l3 = limbs[3] }
    public var limbs: [UInt64] { [l0, l1, l2, l3] }

    @inline(__always) mutating func addLimbs(_ a0: UInt64, _ a1: UInt64, _ a2: UInt64, _ a3: UInt64) {
        var c: Bool
        (l0, c) = l0.addingReportingOverflow(a0)
        var x = a1 &+ (c ? 1 : 0); var c2 = c && x == 0
        (l1, c) = l1.addingReportingOverflow(x); c = c || c2
        x = a2 &+ (c ? 1 : 0); c2 = c && x == 0
        (l2, c) = l2.addingReportingOverflow(x); c = c || c2
        l3 = l3 &+ a3 &+ (c ? 1 : 0)
    }

    /// Adds ±(high·2¹²⁸ + low) units.
    @inline(__always) mutating func add(magnitudeHigh high: UInt128, low: UInt128, negative: Bool) {
        var a0 = UInt64(truncatingIfNeeded: low), a1 = UInt64(truncatingIfNeeded: low >> 64)
        var a2 = UInt64(truncatingIfNeeded: high), a3 = UInt64(truncatingIfNeeded: high >> 64)
        if negative {
            a0 = ~a0; a1 = ~a1; a2 = ~a2; a3 = ~a3
            var c: Bool
            (a0, c) = a0.addingReportingOverflow(1)
            if c { (a1, c) = a1.addingReportingOverflow(1) }
            if c { (a2, c) = a2.addingReportingOverflow(1) }
            if c { a3 = a3 &+ 1 }
        }
        addLimbs(a0, a1, a2, a3)
    }

    /// Adds a·b·2⁻¹²⁰ for value grid numbers a·2⁻⁶⁰ and b·2⁻⁶⁰.
    @inline(__always) public mutating func addProduct(_ a: Int128, _ b: Int128) {
        let (high, low) = a.magnitude.multipliedFullWidth(by: b.magnitude)
        add(magnitudeHigh: high, low: low, negative: (a < 0) != (b < 0))
    }

    /// Adds a·2⁻⁶⁰.
    @inline(__always) public mutating func addValue(_ a: Int128) {
        let m = a.magnitude
        add(magnitudeHigh: m >> 68, low: m << 60, negative: a < 0)
    }

    public mutating func merge(_ o: FixedSum) { addLimbs(o.l0, o.l1, o.l2, o.l3) }

    public mutating func subtract(_ o: FixedSum) {
        var n = o
        n.l0 = ~n.l0; n.l1 = ~n.l1; n.l2 = ~n.l2; n.l3 = ~n.l3
        n.addLimbs(1, 0, 0, 0)
        addLimbs(n.l0, n.l1, n.l2, n.l3)
    }

    /// The sum as a double-double (its most significant 106 bits).
    public var doubleDouble: DoubleDouble {
        var m = self
        let negative = l3 >> 63 == 1
        if negative { m = FixedSum(); m.subtract(self) }
        var d = DoubleDouble()
        for (k, limb) in [m.l3, m.l2, m.l1, m.l0].enumerated() where limb != 0 {
            let scale = Double(sign: .plus, exponent: 64 * (3 - k) - 120, significand: 1)
            d.add(Double(limb >> 32) * 0x1p32 * scale)
            d.add(Double(limb & 0xFFFF_FFFF) * scale)
        }
        return negative ? -d : d
    }

    /// The nearest double (to within an ulp).
    public var value: Double { doubleDouble.value }
}

/// Why a value cannot enter the moments.
public struct MomentsRangeError: Error, Sendable {
    public var value: Double
}

/// The sufficient statistics of k quantities per unit (user) over a group of units: the count n,
/// every Σxᵢ and every Σxᵢxⱼ (i ≤ j). Each value is first rounded to a multiple of 2⁻⁶⁰ (exact for
/// counts and for any double of magnitude 2⁻⁸ or more) and the sums are exact (`FixedSum`), so
/// merging is associative and commutative to the bit: moments computed in any number of parts,
/// merged in any order, give the same report. Every mean, variance and covariance of linear
/// combinations of the quantities follows from them (the delta method, Welch, CUPED). Values must
/// stay below 2⁶⁰ in magnitude.
public struct Moments: Sendable, Equatable {
    public let dimension: Int
    public private(set) var count: Int = 0
    /// Σxᵢ for i < k, then Σxᵢxⱼ for i ≤ j in row order.
    public private(set) var sums: [FixedSum]

    /// Magnitude bound of a value (2⁶⁰).
    public static let limit = 0x1p60

    public init(dimension: Int) {
        self.dimension = dimension
        sums = [FixedSum](repeating: FixedSum(), count: dimension + dimension * (dimension + 1) / 2)
    }

    /// Rebuilds moments from their stored parts (a summary file); nil when the sizes disagree.
    public init?(dimension: Int, count: Int, sums: [FixedSum]) {
        guard dimension > 0, count >= 0, sums.count == dimension + dimension * (dimension + 1) / 2 else { return nil }
        self.dimension = dimension
        self.count = count
        self.sums = sums
    }

    /// Index of Σxᵢxⱼ in `sums`.
    @inline(__always) public func productIndex(_ i: Int, _ j: Int) -> Int {
        let (a, b) = i <= j ? (i, j) : (j, i)
        return dimension + a * dimension - a * (a - 1) / 2 + (b - a)
    }

    /// Adds one unit's quantities (`x.count == dimension`); zeros cost nothing. Throws for a value
    /// of magnitude 2⁶⁰ or more (or not finite), leaving the moments unchanged.
    public mutating func add(_ x: UnsafeBufferPointer<Double>) throws(MomentsRangeError) {
        precondition(x.count == dimension)
        try withUnsafeTemporaryAllocation(of: (Int, Int128).self, capacity: dimension) { (nz) throws(MomentsRangeError) in
            var m = 0
            for i in 0..<dimension where x[i] != 0 {
                guard abs(x[i]) < Moments.limit else { throw MomentsRangeError(value: x[i]) }
                nz[m] = (i, Int128((x[i] * 0x1p60).rounded()))
                m += 1
            }
            count += 1
            sums.withUnsafeMutableBufferPointer { s in
                for a in 0..<m {
                    let (i, qi) = nz[a]
                    s[i].addValue(qi)
                    let row = dimension + i * dimension - i * (i - 1) / 2 - i
                    for b in a..<m {
                        let (j, qj) = nz[b]
                        s[row + j].addProduct(qi, qj)
                    }
                }
            }
        }
    }

    public mutating func add(_ x: [Double]) throws(MomentsRangeError) {
        try x.withUnsafeBufferPointer { (b) throws(MomentsRangeError) in try add(b) }
    }

    /// Adds another group's moments.
    public mutating func merge(_ other: Moments) {
        precondition(other.dimension == dimension)
        count += other.count
        for i in sums.indices { sums[i].merge(other.sums[i]) }
    }

    /// Removes a subgroup's moments (which must have been added).
    public mutating func subtract(_ other: Moments) {
        precondition(other.dimension == dimension)
        count -= other.count
        for i in sums.indices { sums[i].subtract(other.sums[i]) }
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
        for t in c.terms { s += sums[t.index].doubleDouble * t.coefficient }
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
            for t in b.terms { sab += sums[productIndex(s.index, t.index)].doubleDouble * (s.coefficient * t.coefficient) }
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
