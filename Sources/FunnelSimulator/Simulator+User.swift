import Foundation

/// The trap a simulated user carries (at most one per user).
enum Trap: CaseIterable {
    case botFlag, botRate, nearBot, nonViewable, reshown, orphan, late, dupClick, lateConversion,
         unclickedPurchase, cartUnclicked, leaked, mismatch, preExposure, unexposed, duplicate, sameInstant
}

extension Simulator {
    /// About 10 % of users carry one trap; the near-bot trap (20 fast clicks) is rarer so that it
    /// does not dominate click-through.
    mutating func pickTrap() -> Trap? {
        guard traps, rng.chance(0.1) else { return nil }
        let trap = Trap.allCases[rng.int(0, Trap.allCases.count - 1)]
        if trap == .nearBot && !rng.chance(0.2) { return nil }
        return trap
    }

    /// Picks `count` items the user has not seen, ranked by the arm's ranker.
    mutating func rank(_ variant: String, shown: inout Set<Int>, count: Int) -> [Int] {
        var candidates: [(Int, Double)] = []
        var tries = 0
        while candidates.count < max(30, count) && tries < 2000 {
            tries += 1
            let i = rng.int(0, itemCount - 1)
            if shown.contains(i) || candidates.contains(where: { $0.0 == i }) { continue }
            let noise = 0.3 * rng.normal()
            let score: Double
            if scenario == .clickbait && variant == "treatment" {
                score = log(attractiveness[i]) + (clickbait[i] ? 0.5 : 0) + noise
            } else if scenario.logsPropensities && variant == "treatment" {
                score = log(attractiveness[i]) + noise
            } else {
                score = log(attractiveness[i] * conversion[i]) + noise
            }
            candidates.append((i, score))
        }
        candidates.sort { $0.1 > $1.1 }
        var list = candidates.prefix(count).map { $0.0 }
        for i in list { shown.insert(i) }
        rankedOrder = list
        if scenario.logsPropensities && rng.chance(Simulator.exploration) {
            list.shuffle(using: &rng)
            randomizedRequest = true
        } else {
            randomizedRequest = false
        }
        return list
    }

    /// One unseen item, marked as seen.
    mutating func unseenItem(_ shown: inout Set<Int>) -> Int {
        while true {
            let i = rng.int(0, itemCount - 1)
            if !shown.contains(i) { shown.insert(i); return i }
        }
    }

    struct SessionImp {
        var imp: Imp
        var clickTs: Int64?
        var purchased = false
    }

    /// An ordinary session: a ranked list, position-biased clicks, carts and one multi-line order.
    /// Adds to `counts` when `counted`.
    mutating func session(user: String, variant: String, device: String, at t0: Int64, shown: inout Set<Int>,
                          counted: Bool, counts: inout Truth.Counts, extraOrderLine: Int? = nil,
                          botFlag: Bool = false, propensity: (click: Double, buy: Double) = (1, 1)) -> [SessionImp] {
        let surface = rng.chance(0.6) ? "home" : "search"
        let request = "r\(nextEvent + 1)"
        let items = rank(variant, shown: &shown, count: listLength)
        let deviceFactor = device == "mobile" ? 1.1 : (device == "desktop" ? 0.9 : 1.0)
        let ranked = rankedOrder
        let logging = scenario.logsPropensities
        let rankerName = randomizedRequest ? "random" : (variant == "treatment" ? "popularity" : "relevance")
        var imps: [SessionImp] = []
        for (k, item) in items.enumerated() {
            let imp = Imp(id: eventID(), item: item, position: k + 1, ts: t0 + Int64(k) * 150, surface: surface, request: request)
            let view: Viewability = rng.chance(0.85) ? .full : .absent
            // The logging policy's marginal probability of this item here: ranked order with
            // probability 1 − ε, a uniform shuffle with probability ε.
            let logged = logging ? (1 - Simulator.exploration) * (ranked[k] == item ? 1 : 0) + Simulator.exploration / Double(items.count) : nil
            _ = impression(user: user, imp: imp, view: view, variant: rng.chance(0.5) ? variant : nil,
                           propensity: logged, ranker: logging ? rankerName : nil, bot: botFlag && k == 0)
            imps.append(SessionImp(imp: imp))
            if counted { counts.impressions += 1 }
        }
        if logging {
            recordPolicies(request: request, ranked: ranked, deviceFactor: deviceFactor, clickFactor: propensity.click)
        }
        var lines: [(item: Int, quantity: Int)] = []
        var lastClick: Int64 = t0
        for k in imps.indices {
            let item = imps[k].imp.item
            let p = clickProbability(item: item, position: k, deviceFactor: deviceFactor, clickFactor: propensity.click)
            let q = min(0.95, conversion[item] * propensity.buy)
            if counted {
                var e = truth.expected[variant] ?? (0, 0, 0)
                e.impressions += 1; e.clicks += p; e.purchases += p * q
                truth.expected[variant] = e
            }
            guard rng.chance(p) else { continue }
            let ts = imps[k].imp.ts + Int64(rng.int(2000, 300_000))
            _ = click(user: user, impressionID: imps[k].imp.id, ts: ts)
            imps[k].clickTs = ts
            lastClick = max(lastClick, ts)
            if counted { counts.clicks += 1 }
            if rng.chance(0.3) {
                cart(user: user, item: item, ts: ts + Int64(rng.int(10_000, 600_000)), impressionID: rng.chance(0.5) ? imps[k].imp.id : nil)
                if counted { counts.carts += 1 }
            }
            if rng.chance(q) {
                let q = rng.chance(0.8) ? 1 : (rng.chance(0.75) ? 2 : 3)
                lines.append((item, q))
                imps[k].purchased = true
                if counted {
                    counts.purchases += 1
                    counts.revenueCents += q * priceCents[item]
                }
            }
        }
        if let extra = extraOrderLine { lines.append((extra, 1)) }
        if !lines.isEmpty {
            let total = purchase(user: user, ts: lastClick + Int64(rng.int(300_000, 10_800_000)), lines: lines)
            if counted { counts.orders += 1; counts.orderRevenueCents += total }
        }
        return imps
    }

    mutating func simulateUser(_ u: Int) {
        if scenario == .positionBiasRecurring { return simulateRecurringUser(u) }
        let user = "u\(u)"
        let trap = pickTrap()
        let variant = rng.chance(0.5) ? "treatment" : "control"
        let other = variant == "control" ? "treatment" : "control"
        let devices = ["mobile", "desktop", "tablet"]
        let device = devices[rng.int(0, 2)]
        let userType = rng.chance(0.4) ? "new" : "returning"
        let t0 = start + Int64(rng.int(0, 7 * 86_400)) * 1000 + Int64(rng.int(0, 999))
        // Users differ in how much they click and buy (log-normal, mean 1): impressions of one user
        // are correlated, which is why rates are analysed per user.
        let propensity = (click: exp(1.0 * rng.normal() - 0.5), buy: exp(0.8 * rng.normal() - 0.32))
        var shown = Set<Int>()
        var counts = Truth.Counts()
        if u % 40 == 17 { junkLine(u) }

        if trap == .unexposed {
            _ = session(user: user, variant: "control", device: device, at: t0, shown: &shown, counted: false, counts: &counts)
            return
        }
        if trap == .preExposure {
            let before = t0 - Int64(rng.int(4 * 3600, 20 * 3600)) * 1000
            var ignored = Truth.Counts()
            // The session and its order end before the exposure, so none of it enters the analysis.
            _ = sessionEndingBefore(user: user, variant: variant, device: device, at: before, limit: t0, shown: &shown, counts: &ignored)
        }
        if trap != .preExposure && rng.chance(0.6) {
            // Ordinary activity in the two weeks before the experiment (the same user, the control
            // ranker): the pre-period that CUPED uses as a covariate.
            var ignored = Truth.Counts()
            let before = t0 - Int64(rng.int(1, 13)) * 86_400_000 - Int64(rng.int(0, 43_200)) * 1000
            _ = session(user: user, variant: "control", device: device, at: before, shown: &shown, counted: false,
                        counts: &ignored, propensity: propensity)
        }
        let firstExposure = exposure(user: user, ts: t0, variant: variant, device: device, userType: userType)
        if trap == .duplicate { duplicatesPending.append(firstExposure); truth.bump("duplicate_events") }
        var counted = true
        if trap == .leaked {
            _ = exposure(user: user, ts: t0 + 600_000, variant: other, device: device, userType: userType)
            truth.bump("leaked_users")
            counted = false
        }
        if trap == .botRate {
            var t = t0 + 60_000
            for k in 0..<25 {
                let imp = Imp(id: eventID(), item: unseenItem(&shown), position: k + 1, ts: t, surface: "home", request: "rb\(u)")
                _ = impression(user: user, imp: imp, view: .full, variant: nil)
                _ = click(user: user, impressionID: imp.id, ts: t + 500)
                t += 2000
            }
            truth.bump("bot_users")
            return
        }
        if trap == .botFlag { truth.bump("bot_users"); counted = false }

        let sessions = rng.int(1, 3)
        var t = trap == .sameInstant ? t0 : t0 + Int64(rng.int(1, 1800)) * 1000
        var firstSession: [SessionImp] = []
        for s in 0..<sessions {
            let extra = (trap == .unclickedPurchase && s == 0) ? unseenItem(&shown) : nil
            let imps = session(user: user, variant: variant, device: device, at: t, shown: &shown, counted: counted,
                               counts: &counts, extraOrderLine: extra, botFlag: trap == .botFlag && s == 0, propensity: propensity)
            // The never-clicked line joins the session's order (or makes one); session() counted the order.
            if extra != nil { truth.bump("unattributed_conversions") }
            if s == 0 { firstSession = imps }
            t += Int64(rng.int(3 * 3600, 20 * 3600)) * 1000
        }
        if trap != .botFlag && trap != .leaked {
            applyTrap(trap, user: user, variant: variant, other: other, first: firstSession, shown: &shown, counts: &counts, later: t)
        }
        if counted {
            counts.users = 1
            if counts.orders > 0 { counts.convertingUsers = 1 }
            var c = truth.variants[variant, default: Truth.Counts()]
            c.users += counts.users; c.impressions += counts.impressions; c.clicks += counts.clicks; c.carts += counts.carts
            c.purchases += counts.purchases; c.revenueCents += counts.revenueCents; c.orders += counts.orders
            c.convertingUsers += counts.convertingUsers; c.orderRevenueCents += counts.orderRevenueCents
            truth.variants[variant] = c
        }
        lastImpressionID = firstSession.first?.imp.id ?? lastImpressionID
    }

    /// A pre-exposure session whose clicks and order all fall before `limit`.
    mutating func sessionEndingBefore(user: String, variant: String, device: String, at t: Int64, limit: Int64,
                                      shown: inout Set<Int>, counts: inout Truth.Counts) -> [SessionImp] {
        let surface = "home"
        var imps: [SessionImp] = []
        for (k, item) in rank(variant, shown: &shown, count: 4).enumerated() {
            let imp = Imp(id: eventID(), item: item, position: k + 1, ts: t + Int64(k) * 100, surface: surface, request: "rp\(nextEvent)")
            _ = impression(user: user, imp: imp, view: .full, variant: nil)
            imps.append(SessionImp(imp: imp))
        }
        let ts = imps[0].imp.ts + 30_000
        _ = click(user: user, impressionID: imps[0].imp.id, ts: ts)
        _ = purchase(user: user, ts: min(ts + 600_000, limit - 1000), lines: [(imps[0].imp.item, 1)])
        return imps
    }

    mutating func applyTrap(_ trap: Trap?, user: String, variant: String, other: String, first: [SessionImp],
                            shown: inout Set<Int>, counts: inout Truth.Counts, later: Int64) {
        guard let trap, !first.isEmpty else { return }
        let lastTs = first.last!.imp.ts
        switch trap {
        case .nearBot:
            // Exactly 20 clicks with the last 60 s after the first: not a bot.
            let t = later
            for k in 0..<20 {
                let imp = Imp(id: eventID(), item: unseenItem(&shown), position: k % 8 + 1, ts: t + Int64(k) * 100, surface: "home", request: "rn\(user)-\(k / 8)")
                _ = impression(user: user, imp: imp, view: .full, variant: nil)
                let clickTs = k == 19 ? t + 10_000 + 60_000 : t + 10_000 + Int64(k) * 3000
                _ = click(user: user, impressionID: imp.id, ts: clickTs)
            }
            counts.impressions += 20
            counts.clicks += 20
        case .nonViewable:
            let imp = Imp(id: eventID(), item: unseenItem(&shown), position: 9, ts: lastTs + 150, surface: first[0].imp.surface, request: first[0].imp.request)
            _ = impression(user: user, imp: imp, view: .below, variant: nil)
            truth.bump("non_viewable_impressions")
            if rng.chance(0.5) {
                _ = click(user: user, impressionID: imp.id, ts: imp.ts + 10_000)
                truth.bump("non_viewable_clicks")
            }
        case .reshown:
            let original = first[0]
            let delta: Int64 = [3_599_000, 3_600_000, 3_601_000][rng.int(0, 2)]
            let imp = Imp(id: eventID(), item: original.imp.item, position: 1, ts: original.imp.ts + delta,
                          surface: original.imp.surface, request: "rs\(nextEvent)")
            _ = impression(user: user, imp: imp, view: .full, variant: nil)
            if delta == 3_601_000 {
                counts.impressions += 1
            } else {
                truth.bump("collapsed_impressions")
                if rng.chance(0.5) {
                    _ = click(user: user, impressionID: imp.id, ts: imp.ts + 10_000)
                    if original.clickTs == nil { counts.clicks += 1 } else { truth.bump("duplicate_clicks") }
                }
            }
        case .orphan:
            let target = rng.chance(0.5) || lastImpressionID == nil ? "ghost-\(user)" : lastImpressionID!
            _ = click(user: user, impressionID: target, ts: lastTs + 5000)
            truth.bump("orphan_clicks")
        case .late:
            guard let k = first.indices.last(where: { first[$0].clickTs == nil }) else { return }
            let offset: Int64 = [1_800_000, 1_801_000, -5000, -6000][rng.int(0, 3)]
            _ = click(user: user, impressionID: first[k].imp.id, ts: first[k].imp.ts + offset)
            if offset == 1_800_000 || offset == -5000 { counts.clicks += 1 } else { truth.bump("late_clicks") }
        case .dupClick:
            if let k = first.indices.first(where: { first[$0].clickTs != nil }) {
                _ = click(user: user, impressionID: first[k].imp.id, ts: first[k].clickTs! + 30_000)
                truth.bump("duplicate_clicks")
            }
        case .lateConversion:
            guard let k = first.indices.first(where: { first[$0].clickTs != nil && !first[$0].purchased }) else { return }
            let exact = rng.chance(0.5)
            let ts = first[k].clickTs! + 86_400_000 + (exact ? 0 : 1000)
            let total = purchase(user: user, ts: ts, lines: [(first[k].imp.item, 1)])
            counts.orders += 1
            counts.orderRevenueCents += total
            if exact { counts.purchases += 1; counts.revenueCents += total } else { truth.bump("unattributed_conversions") }
        case .cartUnclicked:
            cart(user: user, item: unseenItem(&shown), ts: lastTs + 60_000, impressionID: nil)
            truth.bump("unattributed_conversions")
        case .mismatch:
            let imp = Imp(id: eventID(), item: unseenItem(&shown), position: 9, ts: lastTs + 150, surface: first[0].imp.surface, request: first[0].imp.request)
            _ = impression(user: user, imp: imp, view: .full, variant: other)
            truth.bump("variant_mismatches")
        default:
            break
        }
    }

    /// One line that must be quarantined, rotating through the reasons.
    mutating func junkLine(_ u: Int) {
        let kinds: [(String, String)] = [
            ("invalid_json", "{\"type\":\"click\",\"event_id\":\"q\(u)\",\"ts\":"),
            ("invalid_json", "[\"not\",\"an\",\"object\"]"),
            ("missing_field", "{\"type\":\"impression\",\"event_id\":\"q\(u)\",\"ts\":\"2026-03-02T10:00:00Z\",\"user_id\":\"u\(u)\",\"position\":1}"),
            ("wrong_type", "{\"type\":\"impression\",\"event_id\":\"q\(u)\",\"ts\":\"2026-03-02T10:00:00Z\",\"user_id\":\"u\(u)\",\"item_id\":\"i1\",\"position\":\"3\"}"),
            ("unknown_type", "{\"type\":\"view\",\"event_id\":\"q\(u)\",\"ts\":\"2026-03-02T10:00:00Z\",\"user_id\":\"u\(u)\"}"),
            ("invalid_timestamp", "{\"type\":\"click\",\"event_id\":\"q\(u)\",\"ts\":\"2026-02-30T10:00:00Z\",\"user_id\":\"u\(u)\",\"impression_id\":\"x\"}"),
            ("invalid_value", "{\"type\":\"impression\",\"event_id\":\"q\(u)\",\"ts\":1772445600000,\"user_id\":\"u\(u)\",\"item_id\":\"i1\",\"position\":0}"),
            ("wrong_type", "{\"type\":\"add_to_cart\",\"event_id\":\"q\(u)\",\"ts\":1772445600000,\"user_id\":\"u\(u)\",\"item_id\":\"i1\",\"quantity\":1.5}"),
            ("invalid_value", "{\"type\":\"purchase\",\"event_id\":\"q\(u)\",\"ts\":1772445600000,\"user_id\":\"u\(u)\",\"order_id\":\"o\",\"items\":[]}"),
        ]
        let (reason, text) = kinds[(u / 40) % kinds.count]
        emitLine(Array(text.utf8))
        truth.quarantined[reason, default: 0] += 1
    }
}
