import FunnelEvents

/// Which rounds a worker collects: none, those that carry a propensity, or all.
enum RoundCollection { case none, logged, all }

/// Applies the counting rules to one user's events at a time (reusing scratch buffers).

struct UserWorker {
    let log: EventLog
    let rules: Rules
    let byUser: (offsets: [Int32], indices: [Int32])
    let impSlot: SlotArray
    var collect = RoundCollection.none
    /// Only the analysed users' sums (a sensitivity window's run): no position or item counts.
    var usersOnly = false
    let experimentLabel: Int32?
    var output = PartOutput()

    /// Kept impressions of the current user, and what was attributed to each.
    struct Kept {
        var event: Int32
        var clicks: Int32 = 0
        var firstClickTs: Int64 = 0
        var firstClickEvent: Int32 = -1
        var carted = false
        var purchased = false
        /// A purchase was attributed to it through a click (last click), not by view-through.
        var purchasedAfterClick = false
        var revenue = 0.0
    }
    var kept: [Kept] = []
    var keptOrder: [Int] = []
    var viewable: [Int32] = []
    /// The viewable impressions in input order (ascending event index): the user's rounds.
    var served: [Int32] = []
    var servedClicked: [Bool] = []
    var clickTimes: [Int64] = []
    /// Counted clicks: (item, click ts, kept index).
    var counted: [(item: Int32, ts: Int64, kept: Int32)] = []
    /// The user's events up to `rules.asOf`, reused from user to user.
    var asOfIndices: [Int32] = []

    init(log: EventLog, rules: Rules, byUser: (offsets: [Int32], indices: [Int32]), impSlot: SlotArray) {
        self.log = log
        self.rules = rules
        self.byUser = byUser
        self.impSlot = impSlot
        experimentLabel = log.labels.lookup(rules.experiment)
    }

    mutating func process(user: Int32) {
        let lo = Int(byUser.offsets[Int(user)]), hi = Int(byUser.offsets[Int(user) + 1])
        if lo == hi { return }
        let events = log.events
        if let cutoff = rules.asOf {
            // As of an instant: the user's events up to it, as if the log ended there.
            var upTo = asOfIndices
            asOfIndices = []
            upTo.removeAll(keepingCapacity: true)
            for k in lo..<hi where events[Int(byUser.indices[k])].ts <= cutoff { upTo.append(byUser.indices[k]) }
            if upTo.isEmpty { asOfIndices = upTo; return }
            upTo.withUnsafeBufferPointer { mine in events.withUnsafeBufferPointer { ev in process(user: user, mine, ev) } }
            asOfIndices = upTo
            return
        }
        byUser.indices.withUnsafeBufferPointer { all in
            let mine = UnsafeBufferPointer(rebasing: all[lo..<hi])
            events.withUnsafeBufferPointer { ev in process(user: user, mine, ev) }
        }
    }

    mutating func process(user: Int32, _ mine: UnsafeBufferPointer<Int32>, _ ev: UnsafeBufferPointer<Event>) {
        var dq = DataQuality()
        defer { output.dataQuality.add(dq) }
        for i in mine { output.endOfData = max(output.endOfData, ev[Int(i)].ts) }

        // Rule 2: bots — a `bot: true` event, or more than N clicks within 60 s (inclusive).
        if rules.botFilter {
            clickTimes.removeAll(keepingCapacity: true)
            var flagged = false
            for i in mine {
                let e = ev[Int(i)]
                if e.bot { flagged = true; break }
                if e.type == .click { clickTimes.append(e.ts) }
            }
            if !flagged && clickTimes.count > rules.botMaxClicks {
                clickTimes.sort()
                let k = rules.botMaxClicks
                for j in 0..<(clickTimes.count - k) where clickTimes[j + k] - clickTimes[j] <= 60_000 { flagged = true; break }
            }
            if flagged { dq.botUsers = 1; return }
        }

        // Rule 3: viewability (judged only when both fields are present; thresholds inclusive).
        viewable.removeAll(keepingCapacity: true)
        for i in mine where ev[Int(i)].type == .impression {
            let e = ev[Int(i)]
            if e.extra >= 0 {
                let v = log.viewability[Int(e.extra)]
                if !(v.fraction >= rules.viewabilityThreshold && v.ms >= rules.viewabilityDurationMs) {
                    dq.nonViewableImpressions += 1
                    impSlot.pointer[Int(i)] = -2
                    continue
                }
            }
            viewable.append(i)
        }
        if collect != .none {
            served.removeAll(keepingCapacity: true)
            served.append(contentsOf: viewable)
            servedClicked.removeAll(keepingCapacity: true)
            servedClicked.append(contentsOf: repeatElement(false, count: served.count))
        }

        // Rule 4: dedup per (item, surface) in (ts, input order); a kept impression opens
        // [ts, ts + window]; impressions inside collapse into it.
        viewable.sort { a, b in
            let x = ev[Int(a)], y = ev[Int(b)]
            if x.item != y.item { return x.item < y.item }
            if x.surface != y.surface { return x.surface < y.surface }
            if x.ts != y.ts { return x.ts < y.ts }
            return a < b
        }
        kept.removeAll(keepingCapacity: true)
        var open: (item: Int32, surface: Int32, end: Int64, kept: Int32)? = nil
        for i in viewable {
            let e = ev[Int(i)]
            if let o = open, o.item == e.item, o.surface == e.surface, e.ts <= o.end {
                impSlot.pointer[Int(i)] = o.kept
                dq.collapsedImpressions += 1
                continue
            }
            let k = Int32(kept.count)
            kept.append(Kept(event: i))
            impSlot.pointer[Int(i)] = k
            open = (e.item, e.surface, e.ts + rules.dedupWindow, k)
        }

        // Rule 5: clicks, looked up by (user, impression_id); window from the named impression's ts.
        counted.removeAll(keepingCapacity: true)
        var inWindow: [(ts: Int64, event: Int32, kept: Int32)] = []
        for i in mine where ev[Int(i)].type == .click {
            let c = ev[Int(i)]
            let target = log.eventIndex(id: c.ref, user: user)
            guard target >= 0, ev[Int(target)].type == .impression, ev[Int(target)].user == user else {
                dq.orphanClicks += 1
                continue
            }
            let slot = impSlot.pointer[Int(target)]
            if slot == -2 { dq.nonViewableClicks += 1; continue }
            let delta = c.ts - ev[Int(target)].ts
            if delta < -rules.clockSkew || delta > rules.clickWindow { dq.lateClicks += 1; continue }
            inWindow.append((c.ts, i, slot))
            // The round's reward: a click naming this very impression inside the window.
            if collect != .none, let r = servedIndex(of: target) { servedClicked[r] = true }
        }
        for click in inWindow {
            let k = Int(click.kept)
            if rules.dedupClicks {
                if kept[k].firstClickEvent < 0 {
                    kept[k].firstClickEvent = click.event; kept[k].firstClickTs = click.ts; kept[k].clicks = 1
                } else {
                    dq.duplicateClicks += 1
                    if (click.ts, click.event) < (kept[k].firstClickTs, kept[k].firstClickEvent) {
                        kept[k].firstClickEvent = click.event; kept[k].firstClickTs = click.ts
                    }
                }
            } else {
                kept[k].clicks += 1
                counted.append((ev[Int(kept[k].event)].item, click.ts, click.kept))
            }
        }
        if rules.dedupClicks {
            for (k, kp) in kept.enumerated() where kp.clicks > 0 {
                counted.append((ev[Int(kp.event)].item, kp.firstClickTs, Int32(k)))
            }
        }

        // Rule 6: conversions, last click within the window (ties: later impression ts, then input
        // order), else view-through; attribution happens before the exclusions of rule 7.
        for i in mine {
            let e = ev[Int(i)]
            if e.type == .addToCart {
                if let k = attribute(item: e.item, at: e.ts, ev)?.kept { kept[k].carted = true } else { dq.unattributedConversions += 1 }
            } else if e.type == .purchase {
                for line in log.purchaseLines(of: e) {
                    if let (k, byClick) = attribute(item: line.item, at: e.ts, ev) {
                        kept[k].purchased = true
                        if byClick { kept[k].purchasedAfterClick = true }
                        kept[k].revenue += Double(line.quantity) * line.price
                    } else {
                        dq.unattributedConversions += 1
                    }
                }
            }
        }

        // The rounds, once conversions are attributed (a round's purchase label needs them).
        if collect != .none { collectRounds(user: user, ev) }

        // Rule 7: assignment.
        guard let experimentLabel else { return }
        var first: Event? = nil
        var firstVariant: Int32 = -1
        var leaked = false
        for i in mine {
            let e = ev[Int(i)]
            guard e.type == .exposure, e.experiment == experimentLabel else { continue }
            if let f = first {
                if e.variant != firstVariant { leaked = true }
                if e.ts < f.ts { first = e }
            } else {
                first = e
                firstVariant = e.variant
            }
        }
        guard let first else { return }
        dq.exposedUsers = 1
        if leaked { dq.leakedUsers = 1; return }
        let variant = first.variant
        var stats = UserStats()
        var pre = UserStats()
        let preStart = first.ts - rules.lookback
        // In input order, so that a user's revenue is summed in an order that does not depend on
        // how item ids were interned (the same in any split of the log).
        keptOrder.removeAll(keepingCapacity: true)
        keptOrder.append(contentsOf: kept.indices)
        keptOrder.sort { kept[$0].event < kept[$1].event }
        for k in keptOrder {
            let e = ev[Int(kept[k].event)]
            if e.ts < first.ts {
                // Pre-exposure window: the covariate for CUPED.
                if e.ts >= preStart { pre.count(kept[k]) }
                continue
            }
            if e.variant >= 0 && e.variant != variant && (e.experiment < 0 || e.experiment == experimentLabel) {
                dq.variantMismatches += 1
                continue
            }
            let kp = kept[k]
            stats.count(kp)
            if usersOnly { continue }
            output.positions.add(CountMap.key(variant, e.position), 1, kp.clicks, 0)
            output.items.add(CountMap.key(variant, e.item), 1, kp.clicks, kp.purchased ? 1 : 0)
        }
        var orders: [Int32] = []
        var preOrders: [Int32] = []
        for i in mine {
            let e = ev[Int(i)]
            guard e.type == .purchase else { continue }
            if e.ts < first.ts {
                if e.ts >= preStart {
                    pre.converting = true
                    if !preOrders.contains(e.order) { preOrders.append(e.order) }
                    for line in log.purchaseLines(of: e) { pre.orderRevenue += Double(line.quantity) * line.price }
                }
                continue
            }
            stats.converting = true
            if !orders.contains(e.order) { orders.append(e.order) }
            for line in log.purchaseLines(of: e) { stats.orderRevenue += Double(line.quantity) * line.price }
        }
        stats.orders = orders.count
        pre.orders = preOrders.count
        output.users.append(PartOutput.User(user: user, variantLabel: variant, firstExposure: first.ts,
                                            segments: Array(log.context(of: first)), stats: stats, pre: pre))
    }

    /// Position of impression `event` in `served` (binary search: `served` is in event order).
    func servedIndex(of event: Int32) -> Int? {
        var lo = 0, hi = served.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if served[mid] < event { lo = mid + 1 } else { hi = mid }
        }
        return lo < served.count && served[lo] == event ? lo : nil
    }

    /// Appends the user's rounds (every viewable impression, or those with a propensity) in
    /// (ts, input order); a round is collapsed when rule 4 kept another impression in its place.
    /// A round is purchased when it was clicked and the impression it counts as (itself, or the
    /// showing rule 4 kept in its place) had a purchase attributed through a click.
    mutating func collectRounds(user: Int32, _ ev: UnsafeBufferPointer<Event>) {
        let start = output.rounds.count
        for (r, i) in served.enumerated() {
            let e = ev[Int(i)]
            guard collect == .all || e.extraCount > 0 else { continue }
            let l = e.extraCount > 0 ? log.logged[Int(e.extraCount) - 1] : (propensity: Double.nan, request: Int32(-1))
            let k = Int(impSlot.pointer[Int(i)])
            let collapsed = kept[k].event != i
            output.rounds.append(Round(event: i, user: user, item: e.item, position: e.position, request: l.request,
                                       propensity: l.propensity, clicked: servedClicked[r], ts: e.ts, collapsed: collapsed,
                                       purchased: servedClicked[r] && kept[k].purchasedAfterClick))
        }
        output.rounds[start...].sort { ($0.ts, $0.event) < ($1.ts, $1.event) }
    }

    /// The kept impression a conversion of `item` at `t` is attributed to, if any, and whether
    /// through a click (else by view-through).
    func attribute(item: Int32, at t: Int64, _ ev: UnsafeBufferPointer<Event>) -> (kept: Int, byClick: Bool)? {
        var best: (c: Int64, ts: Int64, event: Int32, kept: Int32)? = nil
        for c in counted where c.item == item && c.ts <= t && c.ts >= t - rules.conversionWindow {
            let imp = ev[Int(kept[Int(c.kept)].event)]
            let candidate = (c.ts, imp.ts, kept[Int(c.kept)].event, c.kept)
            if best == nil || (candidate.0, candidate.1, candidate.2) > (best!.c, best!.ts, best!.event) { best = candidate }
        }
        if let best { return (Int(best.kept), true) }
        guard rules.viewThrough else { return nil }
        var vt: (ts: Int64, event: Int32, kept: Int)? = nil
        for (k, kp) in kept.enumerated() {
            let imp = ev[Int(kp.event)]
            guard imp.item == item, imp.ts <= t, imp.ts >= t - rules.viewThroughWindow else { continue }
            if vt == nil || (imp.ts, kp.event) > (vt!.ts, vt!.event) { vt = (imp.ts, kp.event, k) }
        }
        return vt.map { ($0.kept, false) }
    }
}

extension UserStats {
    /// Adds a counted impression: its counted clicks, whether it led to a cart and a purchase,
    /// and the revenue attributed to it.
    mutating func count(_ kp: UserWorker.Kept) {
        impressions += 1
        clicks += Int(kp.clicks)
        carts += kp.carted ? 1 : 0
        purchases += kp.purchased ? 1 : 0
        revenue += kp.revenue
    }
}
