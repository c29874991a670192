import FunnelAttribution
import FunnelConfig
import FunnelEvents
import FunnelTestSupport
import Testing

struct ClickWindowTests {
    @Test("click window: +1800 s counts, +1801 s is late; −5 s counts, −6 s is late", arguments: [
        (1800.0, 1, 0), (1801.0, 0, 1), (-5.0, 1, 0), (-6.0, 0, 1), (0.0, 1, 0),
    ])
    func clickWindowBoundaries(offset: Double, clicks: Int, late: Int) throws {
        var b = LogBuilder()
        b.exposure("u", 0)
        let i = b.impression("u", 100)
        b.click("u", 100 + offset, on: i)
        let a = try b.run()
        #expect(a.counts("control").clicks == clicks)
        #expect(a.dataQuality.lateClicks == late)
    }

    @Test func orphanClicksIncludeOtherUsersImpressions() throws {
        var b = LogBuilder()
        b.exposure("u", 0); b.exposure("v", 0)
        let i = b.impression("u", 10)
        b.click("v", 20, on: i)          // another user's impression
        b.click("u", 20, on: "missing")  // unknown
        b.click("u", 30, on: i)          // counts
        let a = try b.run()
        #expect(a.dataQuality.orphanClicks == 2)
        #expect(a.counts("control").clicks == 1)
    }

    @Test func duplicateClicksAndTheirSwitch() throws {
        var b = LogBuilder()
        b.exposure("u", 0)
        let i = b.impression("u", 10)
        b.click("u", 20, on: i); b.click("u", 25, on: i); b.click("u", 30, on: i)
        let deduped = try b.run()
        #expect(deduped.counts("control").clicks == 1)
        #expect(deduped.dataQuality.duplicateClicks == 2)
        var config = FunnelConfig()
        config.dedupClicks = false
        let all = try b.run(config)
        #expect(all.counts("control").clicks == 3)
        #expect(all.dataQuality.duplicateClicks == 0)
    }
}

struct DedupAndViewabilityTests {
    @Test("re-shown impression: 3599 s and 3600 s collapse, 3601 s is kept", arguments: [
        (3599.0, 1, 1), (3600.0, 1, 1), (3601.0, 2, 0),
    ])
    func reshownImpressions(gap: Double, impressions: Int, collapsed: Int) throws {
        var b = LogBuilder()
        b.exposure("u", 0)
        b.impression("u", 10)
        let second = b.impression("u", 10 + gap, position: 3)
        b.click("u", 20 + gap, on: second)   // a click on a collapsed impression attaches to the kept one
        let a = try b.run()
        #expect(a.counts("control").impressions == impressions)
        #expect(a.dataQuality.collapsedImpressions == collapsed)
        #expect(a.counts("control").clicks == 1)
        // A collapsed impression's own position is ignored: the click lands on position 1.
        if collapsed == 1 { #expect(a.positions[0][1]?.clicks == 1 && a.positions[0][3] == nil) }
    }

    @Test func dedupWindowsChainFromTheKeptImpression() throws {
        // 0 kept; 3000 collapses; 4000 is after the first window (0..3600): kept, opens 4000..7600; 7000 collapses.
        var b = LogBuilder()
        b.exposure("u", 0)
        for t in [0.0, 3000, 4000, 7000] { b.impression("u", t) }
        b.impression("u", 100, surface: "search")   // another surface: its own window
        let a = try b.run()
        #expect(a.counts("control").impressions == 3)
        #expect(a.dataQuality.collapsedImpressions == 2)
    }

    @Test func viewabilityNeedsBothFieldsAndIsInclusive() throws {
        var b = LogBuilder()
        b.exposure("u", 0)
        b.impression("u", 1, item: "a", extra: #","viewable_fraction":0.5,"viewable_ms":1000"#)   // viewable (inclusive)
        let low = b.impression("u", 1, item: "b", extra: #","viewable_fraction":0.49,"viewable_ms":5000"#)
        b.impression("u", 1, item: "c", extra: #","viewable_fraction":0.9,"viewable_ms":999"#)
        b.impression("u", 1, item: "d", extra: #","viewable_fraction":0.1"#)                       // one field: counts
        b.click("u", 5, on: low)
        b.purchase("u", 10, items: [("b", 1, 5)])
        let a = try b.run()
        #expect(a.counts("control").impressions == 2)
        #expect(a.dataQuality.nonViewableImpressions == 2)
        #expect(a.dataQuality.nonViewableClicks == 1)
        #expect(a.dataQuality.unattributedConversions == 1)
    }
}

struct BotTests {
    @Test("bots: 20 clicks within 60 s is a person, 21 is a bot", arguments: [(20, 0, 1), (21, 1, 0)])
    func clickRate(clicks: Int, bots: Int, users: Int) throws {
        var b = LogBuilder()
        b.exposure("u", 0)
        for k in 0..<clicks {
            let i = b.impression("u", 1, item: "i\(k)")
            // First click at 10 s, last at exactly 70 s: the span is 60 s (inclusive).
            b.click("u", k == clicks - 1 ? 70 : 10 + Double(k), on: i)
        }
        let a = try b.run()
        #expect(a.dataQuality.botUsers == bots)
        #expect(a.counts("control").users == users)
    }

    @Test func slowClickerIsNotABot() throws {
        var b = LogBuilder()
        b.exposure("u", 0)
        for k in 0..<21 { let i = b.impression("u", 1, item: "i\(k)"); b.click("u", 10 + Double(k) * 3.001, on: i) }
        #expect(try b.run().dataQuality.botUsers == 0)
    }

    @Test func botFlagExcludesEverythingAndCanBeTurnedOff() throws {
        var b = LogBuilder()
        b.exposure("u", 0); b.exposure("v", 0)
        let i = b.impression("u", 1)
        b.click("u", 2, on: i, bot: true)
        b.impression("v", 1, extra: #","viewable_fraction":0.1,"viewable_ms":1"#)
        let a = try b.run()
        #expect(a.dataQuality.botUsers == 1)
        #expect(a.counts("control").users == 1)
        #expect(a.dataQuality.nonViewableImpressions == 1)
        var config = FunnelConfig()
        config.botFilter = false
        let off = try b.run(config)
        #expect(off.dataQuality.botUsers == 0)
        #expect(off.counts("control").users == 2)
    }
}

struct ConversionTests {
    @Test("conversion at exactly 24 h is attributed; 1 ms later is not", arguments: [(86_400.0, 1, 0), (86_400.001, 0, 1)])
    func conversionWindow(delay: Double, purchases: Int, unattributed: Int) throws {
        var b = LogBuilder()
        b.exposure("u", 0)
        let i = b.impression("u", 10)
        b.click("u", 20, on: i)
        b.purchase("u", 20 + delay, items: [("a", 2, 7.5)])
        let a = try b.run()
        let c = a.counts("control")
        #expect(c.purchases == purchases)
        #expect(c.revenue == Double(purchases) * 15)
        #expect(c.orders == 1 && c.orderRevenue == 15)
        #expect(a.dataQuality.unattributedConversions == unattributed)
    }

    @Test func lastClickWinsAndCartsCountOncePerImpression() throws {
        var b = LogBuilder()
        b.exposure("u", 0)
        let first = b.impression("u", 10, position: 1, surface: "home")
        let second = b.impression("u", 20, position: 2, surface: "search")
        b.click("u", 30, on: first)
        b.click("u", 40, on: second)
        b.cart("u", 50); b.cart("u", 60)
        b.purchase("u", 70, items: [("a", 1, 10), ("zz", 1, 3)])
        let a = try b.run()
        let c = a.counts("control")
        #expect(c.carts == 1 && c.purchases == 1 && c.revenue == 10 && c.orderRevenue == 13)
        #expect(a.dataQuality.unattributedConversions == 1)   // the "zz" line
        #expect(a.positions[0][2]?.clicks == 1)
    }

    @Test("view-through attributes unclicked impressions only when on", arguments: [(false, 0, 1), (true, 1, 0)])
    func viewThrough(on: Bool, purchases: Int, unattributed: Int) throws {
        var b = LogBuilder()
        b.exposure("u", 0)
        b.impression("u", 10)
        b.purchase("u", 3600 * 100, items: [("a", 1, 4)])     // 100 h later, within 168 h
        var config = FunnelConfig()
        config.viewThrough = on
        let a = try b.run(config)
        #expect(a.counts("control").purchases == purchases)
        #expect(a.dataQuality.unattributedConversions == unattributed)
    }
}

struct AssignmentTests {
    @Test func leakedUsersLeaveTheAnalysis() throws {
        var b = LogBuilder()
        b.exposure("u", 0, variant: "control"); b.exposure("u", 5, variant: "treatment")
        b.exposure("v", 0, variant: "treatment"); b.exposure("v", 9, variant: "treatment")
        b.impression("u", 10)
        let a = try b.run()
        #expect(a.dataQuality.leakedUsers == 1)
        #expect(a.counts("control").users == 0)
        #expect(a.counts("treatment").users == 1)
        #expect(a.dataQuality.exposedUsers == 2)
    }

    @Test func mismatchedImpressionsAreExcludedWithTheirClicks() throws {
        var b = LogBuilder()
        b.exposure("u", 0, variant: "control")
        let bad = b.impression("u", 10, item: "a", extra: #","experiment":"exp","variant":"treatment""#)
        b.impression("u", 10, item: "b", extra: #","variant":"treatment""#)                         // experiment absent: mismatch
        b.impression("u", 10, item: "c", extra: #","experiment":"other","variant":"treatment""#)    // other experiment: fine
        b.impression("u", 10, item: "d", extra: #","variant":"control""#)
        b.impression("u", -10, item: "e", extra: #","variant":"treatment""#)                        // before exposure: not judged
        b.click("u", 11, on: bad)
        let a = try b.run()
        #expect(a.dataQuality.variantMismatches == 2)
        #expect(a.counts("control").impressions == 2)
        #expect(a.counts("control").clicks == 0)
    }

    @Test func eventsAtTheExposureInstantCountAndEarlierOnesDoNot() throws {
        var b = LogBuilder()
        b.impression("u", 99.999, item: "early")
        b.exposure("u", 100)
        let i = b.impression("u", 100, item: "a")
        b.click("u", 100, on: i)
        b.purchase("u", 99, items: [("zz", 1, 1)])
        b.purchase("u", 100, items: [("a", 1, 2)])
        let a = try b.run()
        let c = a.counts("control")
        #expect(c.impressions == 1 && c.clicks == 1 && c.purchases == 1)
        #expect(c.orders == 1 && c.orderRevenue == 2 && c.convertingUsers == 1)
    }

    @Test func firstExposureDecidesAndSegmentsComeFromIt() throws {
        var b = LogBuilder()
        b.exposure("u", 50, variant: "treatment", context: #"{"device":"desktop"}"#)
        b.exposure("u", 10, variant: "treatment", context: #"{"device":"tablet"}"#)
        let a = try b.run()
        #expect(a.users.count == 1)
        #expect(a.users[0].firstExposure == b.ms(10))
    }

    @Test func severalExperimentsNeedAChoice() throws {
        var b = LogBuilder()
        b.exposure("u", 0, experiment: "one"); b.exposure("v", 0, experiment: "two")
        #expect(throws: AttributionError.self) { try b.run() }
        var config = FunnelConfig()
        config.experiment = "two"
        #expect(try b.run(config).users.count == 1)
    }

    @Test func duplicatesAreDroppedFirst() throws {
        var b = LogBuilder()
        b.exposure("u", 0)
        let i = b.impression("u", 10)
        b.lines.append(b.lines.last!)                                       // exact duplicate
        b.lines.append(#"{"type":"click","event_id":"\#(i)","ts":1,"user_id":"u","impression_id":"\#(i)"}"#)   // same id, other type
        let a = try b.run()
        #expect(a.dataQuality.duplicateEvents == 2)
        #expect(a.counts("control").impressions == 1)
    }

    /// Duplicates are by event_id within a user (DESIGN.md §7): another user's event with the same
    /// id is an event of its own, and a click finds the impression of its own user.
    @Test func eventIDsAreUniqueWithinAUserOnly() throws {
        var b = LogBuilder()
        b.exposure("u", 0)
        b.exposure("v", 0)
        let imp = #"{"type":"impression","event_id":"same","ts":\#(b.base + 10_000),"user_id":"USER","item_id":"a","position":1}"#
        b.lines.append(imp.replacingOccurrences(of: "USER", with: "u"))
        b.lines.append(imp.replacingOccurrences(of: "USER", with: "v"))   // another user: kept
        b.lines.append(imp.replacingOccurrences(of: "USER", with: "v"))   // v's own duplicate: dropped
        b.lines.append(#"{"type":"click","event_id":"c","ts":\#(b.base + 12_000),"user_id":"v","impression_id":"same"}"#)
        let a = try b.run()
        #expect(a.dataQuality.duplicateEvents == 1)
        #expect(a.dataQuality.orphanClicks == 0)
        #expect(a.counts("control").impressions == 2)
        #expect(a.counts("control").clicks == 1)
    }
}

struct RoundTests {
    /// Every viewable impression of a non-bot user with a propensity is a round, a re-shown item
    /// included (DESIGN.md §7, "Rounds"); a click rewards only the impression it names, inside the
    /// window measured from that impression; non-viewable impressions, bots and duplicate lines give
    /// no round; no experiment is needed.
    @Test func everyServedImpressionIsARoundWithItsOwnClick() throws {
        var b = LogBuilder()
        b.impression("u", 10, item: "a", position: 2, extra: #","propensity":0.25,"request_id":"r1""#)
        let again = b.impression("u", 20, item: "a", position: 1, extra: #","propensity":0.5,"request_id":"r2""#)   // rule 4 collapses it into a
        b.impression("u", 10, item: "b", position: 1, extra: #","propensity":0.5,"viewable_fraction":0.1,"viewable_ms":0"#)
        b.impression("u", 10, item: "c", position: 3)                                                             // no propensity
        let d = b.impression("v", 10, item: "d", position: 1, extra: #","propensity":1"#)
        let e = b.impression("w", 10, item: "e", position: 4, extra: #","propensity":0.2,"bot":true"#)
        b.click("u", 30, on: again)
        b.click("u", 31, on: again)   // a second click on the same round: still one reward
        b.click("v", 5000, on: d)      // 4990 s after d: outside the click window, no reward
        b.click("w", 11, on: e)
        b.lines.append(b.lines[0])     // a resent line (same event_id): not a second round
        let log = try EventReader.read(text: b.lines.joined(separator: "\n"))
        let rounds = Attributor.rounds(log, config: FunnelConfig(), onlyLogged: true)
        #expect(rounds.map { log.items[$0.item] } == ["a", "a", "d"])
        #expect(rounds.map(\.position) == [2, 1, 1])
        #expect(rounds.map(\.propensity) == [0.25, 0.5, 1])
        // The click names the re-shown impression: it rewards that round, not the first showing.
        #expect(rounds.map(\.clicked) == [false, true, false])
        #expect(rounds.map(\.collapsed) == [false, true, false])
        #expect(rounds.map(\.ts) == [b.ms(10), b.ms(20), b.ms(10)])
        #expect(rounds[0].request >= 0 && log.requests[rounds[0].request] == "r1" && rounds[2].request == -1)
        // All rounds: the impression of c without a propensity too.
        #expect(Attributor.rounds(log, config: FunnelConfig()).map { log.items[$0.item] } == ["a", "c", "a", "d"])
    }

    /// The reward window is the click window from the round's own time, both bounds inclusive:
    /// +1800 s and −5 s reward, +1801 s and −6 s do not; the report's dedup_clicks does not matter.
    @Test func rewardWindowIsInclusiveAndIndependentOfClickDedup() throws {
        var b = LogBuilder()
        let offsets: [Double] = [1800, 1801, -5, -6]
        for (k, dt) in offsets.enumerated() {
            let i = b.impression("u\(k)", 100, item: "x", position: 1, extra: #","propensity":1"#)
            b.click("u\(k)", 100 + dt, on: i)
        }
        let log = try EventReader.read(text: b.lines.joined(separator: "\n"))
        for yaml in ["{}", "click_attribution: {dedup_clicks: false}"] {
            let rounds = Attributor.rounds(log, config: try FunnelConfig.parse(yaml: yaml), onlyLogged: true)
            #expect(rounds.map(\.clicked) == [true, false, true, false])
        }
    }
}
