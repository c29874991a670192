import FunnelBase
import Testing

/// Expected values computed by hand and checked with Python's datetime (see comments).
struct TimestampTests {
    func parse(_ s: String) -> Int64? {
        var copy = s
        return copy.withUTF8 { Timestamp.millis(fromRFC3339: $0) }
    }

    @Test("RFC 3339 with Z, fractions and offsets", arguments: [
        ("2026-03-01T00:00:00Z", Int64(1_772_323_200_000)),
        ("2026-03-01T12:00:00.123Z", Int64(1_772_366_400_123)),
        ("2026-03-01T12:00:00.1239Z", Int64(1_772_366_400_123)),   // sub-millisecond digits truncated
        ("2026-03-01T12:00:00.1Z", Int64(1_772_366_400_100)),
        ("2026-03-01t12:00:00.123456789z", Int64(1_772_366_400_123)),
        ("2024-02-29T23:59:59.999-05:30", Int64(1_709_270_999_999)), // leap day, negative offset
        ("2026-03-01T13:00:00+01:00", Int64(1_772_366_400_000)),
        ("1969-12-31T23:59:59.500Z", Int64(-500)),
    ])
    func parsesValid(_ text: String, _ expected: Int64) {
        #expect(parse(text) == expected)
    }

    @Test("rejects malformed timestamps", arguments: [
        "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z", "2026-03-01T24:00:00Z", "2026-03-01T12:60:00Z",
        "2026-03-01T12:00:60Z", "2026-03-01T12:00:00", "2026-03-01 12:00:00Z", "2026-03-01T12:00:00.Z",
        "2026-03-01T12:00:00+0100", "2026-03-01T12:00:00+24:00", "yesterday", "1772323200000", "2026-13-01T00:00:00Z",
    ])
    func rejectsInvalid(_ text: String) {
        #expect(parse(text) == nil)
    }

    @Test func epochMillisMustBeIntegral() {
        #expect(Timestamp.millis(fromNumber: 1_772_323_200_000) == 1_772_323_200_000)
        #expect(Timestamp.millis(fromNumber: 1_772_323_200_000.0) == 1_772_323_200_000)
        #expect(Timestamp.millis(fromNumber: 1_772_323_200_000.5) == nil)
        #expect(Timestamp.millis(fromNumber: .infinity) == nil)
        #expect(Timestamp.millis(fromNumber: 1e300) == nil)
    }

    @Test func formatsRoundTrip() {
        for ms: Int64 in [0, 1_772_366_400_123, -500, 1_709_270_999_999] {
            var s = Timestamp.rfc3339(ms)
            #expect(s.withUTF8 { Timestamp.millis(fromRFC3339: $0) } == ms)
        }
        #expect(Timestamp.rfc3339(1_772_366_400_123) == "2026-03-01T12:00:00.123Z")
    }
}
