import Foundation

extension Simulator {
    static let recurringCandidates = 24

    /// A user of the `position-bias-recurring` scenario: one exposure, then 1–3 sessions at least
    /// three hours apart; each session draws 24 candidates by popularity and makes 2–6 requests 30 s
    /// to 10 min apart, each showing 8 of the candidates ranked by the arm's noisy score (the
    /// logging policy shuffles the 8 with probability ε, as in `position-bias`). Items therefore
    /// recur within the hour at other positions.
    ///
    /// The truth counts what the report counts: an impression of an item shown on the session's
    /// surface within `dedup_window_seconds` (the default, one hour) of the item's last kept
    /// impression collapses into it (`collapsed_impressions`), and a kept impression and the ones
    /// collapsed into it count one click at most (`duplicate_clicks` for the others). Every click
    /// falls 2 s to 5 min after its impression, inside the default click window.
    mutating func simulateRecurringUser(_ u: Int) {
        let user = "u\(u)"
        let variant = rng.chance(0.5) ? "treatment" : "control"
        let devices = ["mobile", "desktop", "tablet"]
        let device = devices[rng.int(0, 2)]
        let deviceFactor = device == "mobile" ? 1.1 : (device == "desktop" ? 0.9 : 1.0)
        let userType = rng.chance(0.4) ? "new" : "returning"
        let t0 = start + Int64(rng.int(0, 7 * 86_400)) * 1000 + Int64(rng.int(0, 999))
        let clickFactor = exp(1.0 * rng.normal() - 0.5)
        var counts = Truth.Counts()
        if u % 40 == 17 { junkLine(u) }
        _ = exposure(user: user, ts: t0, variant: variant, device: device, userType: userType)

        let dedupWindow: Int64 = 3_600_000
        var t = t0 + Int64(rng.int(1, 1800)) * 1000
        for _ in 0..<rng.int(1, 3) {
            let surface = rng.chance(0.6) ? "home" : "search"
            let pool = popularCandidates(Simulator.recurringCandidates)
            // Per item of this session: the end of its open dedup window and whether the kept
            // impression (with those collapsed into it) has a counted click.
            var open: [Int: (end: Int64, clicked: Bool)] = [:]
            var requestTime = t
            for _ in 0..<rng.int(2, 6) {
                let request = "r\(nextEvent + 1)"
                let scored = pool.map { i -> (Int, Double) in
                    let noise = 0.3 * rng.normal()
                    return (i, variant == "treatment" ? log(attractiveness[i]) + noise : log(attractiveness[i] * conversion[i]) + noise)
                }
                let ranked = scored.sorted { $0.1 > $1.1 }.prefix(listLength).map(\.0)
                var items = ranked
                let shuffled = rng.chance(Simulator.exploration)
                if shuffled { items.shuffle(using: &rng) }
                let rankerName = shuffled ? "random" : (variant == "treatment" ? "popularity" : "relevance")
                for (k, item) in items.enumerated() {
                    let imp = Imp(id: eventID(), item: item, position: k + 1, ts: requestTime + Int64(k) * 150, surface: surface, request: request)
                    let logged = (1 - Simulator.exploration) * (ranked[k] == item ? 1 : 0) + Simulator.exploration / Double(items.count)
                    _ = impression(user: user, imp: imp, view: rng.chance(0.85) ? .full : .absent, variant: rng.chance(0.5) ? variant : nil,
                                   propensity: logged, ranker: rankerName)
                    if let o = open[item], imp.ts <= o.end {
                        truth.bump("collapsed_impressions")
                    } else {
                        open[item] = (imp.ts + dedupWindow, false)
                        counts.impressions += 1
                    }
                    let p = clickProbability(item: item, position: k, deviceFactor: deviceFactor, clickFactor: clickFactor)
                    guard rng.chance(p) else { continue }
                    _ = click(user: user, impressionID: imp.id, ts: imp.ts + Int64(rng.int(2000, 300_000)))
                    if open[item]!.clicked { truth.bump("duplicate_clicks") } else { open[item]!.clicked = true; counts.clicks += 1 }
                }
                recordPolicies(request: request, ranked: ranked, deviceFactor: deviceFactor, clickFactor: clickFactor)
                requestTime += Int64(rng.int(30, 600)) * 1000
            }
            t = requestTime + Int64(rng.int(3 * 3600, 20 * 3600)) * 1000
        }
        counts.users = 1
        var c = truth.variants[variant, default: Truth.Counts()]
        c.users += 1; c.impressions += counts.impressions; c.clicks += counts.clicks
        truth.variants[variant] = c
    }

    /// `count` distinct items drawn by popularity.
    mutating func popularCandidates(_ count: Int) -> [Int] {
        var picked: [Int] = []
        while picked.count < count {
            let item = inverseCDF(popularity, rng.uniform())
            if !picked.contains(item) { picked.append(item) }
        }
        return picked
    }
}
