import Foundation
import FunnelBase

/// A small, fast, seedable generator (SplitMix64) so that the same seed gives the same bytes on
/// every platform.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    var base: SplitMix64
    public init(seed: UInt64) { base = SplitMix64(seed: seed &+ 0x9E37_79B9_7F4A_7C15) }

    public mutating func next() -> UInt64 { base.next() }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Bernoulli(p).
    public mutating func chance(_ p: Double) -> Bool { uniform() < p }

    /// Uniform integer in [lo, hi].
    public mutating func int(_ lo: Int, _ hi: Int) -> Int { lo + Int(next() % UInt64(hi - lo + 1)) }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

/// The first index whose cumulative probability reaches `u` (a draw from the distribution whose
/// running sums, ending at 1, are `cumulative`), by bisection.
func inverseCDF(_ cumulative: [Double], _ u: Double) -> Int {
    var lo = 0, hi = cumulative.count - 1
    while lo < hi {
        let mid = (lo + hi) / 2
        if cumulative[mid] < u { lo = mid + 1 } else { hi = mid }
    }
    return lo
}

/// Appends JSON Lines events as bytes (fast, no Foundation formatting per event).
struct LineWriter {
    var bytes: [UInt8] = []
    /// Write about half of the timestamps as epoch milliseconds.
    var mixed = false

    mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

    mutating func int(_ v: Int) {
        if v < 0 { bytes.append(0x2D); int(-v); return }
        if v >= 10 { int(v / 10) }
        bytes.append(UInt8(0x30 + v % 10))
    }

    mutating func digits(_ v: Int, _ width: Int) {
        var div = 1
        for _ in 1..<width { div *= 10 }
        var x = v
        while div > 0 { bytes.append(UInt8(0x30 + (x / div) % 10)); x %= div; div /= 10 }
    }

    /// Money and fractions with up to two decimals, written exactly (cents → "12.34").
    mutating func cents(_ c: Int) {
        int(c / 100)
        bytes.append(0x2E)
        digits(c % 100, 2)
    }

    /// RFC 3339 UTC with milliseconds; with `mixed`, epoch milliseconds for about half of the times.
    mutating func timestamp(_ millis: Int64) {
        if mixed {
            var h = SplitMix64(seed: UInt64(bitPattern: millis))
            if h.next() & 1 == 1 { int(Int(millis)); return }
        }
        let days = Int(millis / 86_400_000)
        let rem = Int(millis % 86_400_000)
        let (y64, m64, d64) = Timestamp.civil(days: Int64(days))
        let (y, m, d) = (Int(y64), Int(m64), Int(d64))
        bytes.append(0x22)
        digits(y, 4); bytes.append(0x2D); digits(m, 2); bytes.append(0x2D); digits(d, 2); bytes.append(0x54)
        digits(rem / 3_600_000, 2); bytes.append(0x3A); digits(rem / 60_000 % 60, 2); bytes.append(0x3A)
        digits(rem / 1000 % 60, 2); bytes.append(0x2E); digits(rem % 1000, 3); bytes.append(0x5A)
        bytes.append(0x22)
    }
}
