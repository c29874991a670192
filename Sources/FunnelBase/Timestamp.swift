/// Timestamps of the event contract: RFC 3339 with an offset, or integer epoch milliseconds.
/// Times are held as integer epoch milliseconds; sub-millisecond digits are truncated.
public enum Timestamp {
    /// Earliest accepted instant (0001-01-01T00:00:00Z) in epoch milliseconds.
    public static let minMillis: Int64 = -62_135_596_800_000
    /// Latest accepted instant (9999-12-31T23:59:59.999Z) in epoch milliseconds.
    public static let maxMillis: Int64 = 253_402_300_799_999

    /// Epoch milliseconds from a JSON number: it must be integral and within years 1–9999.
    public static func millis(fromNumber value: Double) -> Int64? {
        guard value.isFinite, value == value.rounded(.towardZero) else { return nil }
        guard value >= Double(minMillis), value <= Double(maxMillis) else { return nil }
        return Int64(value)
    }

    /// Days from 1970-01-01 to the civil date (proleptic Gregorian).
    @inline(__always)
    static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (m + 9) % 12
        let doy = (153 * mp + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    @inline(__always)
    static func daysInMonth(_ y: Int64, _ m: Int64) -> Int64 {
        switch m {
        case 2: return (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` (`t` and `z` accepted) to epoch milliseconds.
    public static func millis(fromRFC3339 s: UnsafeBufferPointer<UInt8>) -> Int64? {
        let n = s.count
        guard n >= 20 else { return nil }
        @inline(__always) func digits(_ at: Int, _ count: Int) -> Int64? {
            var v: Int64 = 0
            for k in 0..<count {
                let c = s[at + k]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int64(c - 0x30)
            }
            return v
        }
        guard let year = digits(0, 4), s[4] == 0x2D, let month = digits(5, 2), s[7] == 0x2D,
              let day = digits(8, 2), s[10] == 0x54 || s[10] == 0x74,
              let hour = digits(11, 2), s[13] == 0x3A, let minute = digits(14, 2), s[16] == 0x3A,
              let second = digits(17, 2)
        else { return nil }
        guard year >= 1, month >= 1, month <= 12, day >= 1, day <= daysInMonth(year, month),
              hour <= 23, minute <= 59, second <= 59
        else { return nil }
        var i = 19
        var millis: Int64 = 0
        if s[i] == 0x2E {
            i += 1
            let fracStart = i
            while i < n, s[i] >= 0x30, s[i] <= 0x39 {
                if i - fracStart < 3 { millis = millis * 10 + Int64(s[i] - 0x30) }
                i += 1
            }
            let count = i - fracStart
            guard count >= 1 else { return nil }
            if count == 1 { millis *= 100 } else if count == 2 { millis *= 10 }
        }
        guard i < n else { return nil }
        var offsetMinutes: Int64 = 0
        if s[i] == 0x5A || s[i] == 0x7A {
            i += 1
        } else if s[i] == 0x2B || s[i] == 0x2D {
            guard i + 6 == n, let oh = digits(i + 1, 2), s[i + 3] == 0x3A, let om = digits(i + 4, 2),
                  oh <= 23, om <= 59
            else { return nil }
            offsetMinutes = (oh * 60 + om) * (s[i] == 0x2D ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == n else { return nil }
        let days = daysFromCivil(year, month, day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60
        return seconds * 1000 + millis
    }

    /// The proleptic Gregorian (year, month, day) of a day count from 1970-01-01 (inverse of `daysFromCivil`).
    public static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// Formats epoch milliseconds as RFC 3339 UTC with milliseconds (`2026-03-01T12:00:00.123Z`).
    public static func rfc3339(_ millis: Int64) -> String {
        var ms = millis % 1000
        var secs = millis / 1000
        if ms < 0 { ms += 1000; secs -= 1 }
        var days = secs / 86_400
        var rem = secs % 86_400
        if rem < 0 { rem += 86_400; days -= 1 }
        let (y, m, d) = civil(days: days)
        func pad(_ v: Int64, _ w: Int) -> String {
            let s = String(v)
            return s.count >= w ? s : String(repeating: "0", count: w - s.count) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(rem / 3600, 2)):\(pad(rem % 3600 / 60, 2)):\(pad(rem % 60, 2)).\(pad(ms, 3))Z"
    }
}
