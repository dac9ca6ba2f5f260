/// The `# HELP` line of every series ninepd exports. swift-metrics, through which the layers
/// below count, has no help text, and swift-prometheus stops the process when one name is
/// registered with two texts; so the text is added here, where the exposition is rendered,
/// for each family before its `# TYPE` line. docs/METRICS.md says the same at more length;
/// MetricsTests fails when a series has no entry here.
enum MetricHelp {
    static let text: [String: String] = [
        "ninep_requests_total": "9P requests answered, by message type (an aborted request counts too).",
        "ninep_request_errors_total": "9P requests answered with Rlerror, by message type.",
        "ninep_errors_total": "Rlerror replies by errno name.",
        "ninep_request_duration_seconds_bucket": "Requests that took at most le seconds from admission to the reply being queued (cumulative, per type).",
        "ninep_request_duration_seconds_count": "Requests timed, by message type.",
        "ninep_request_duration_seconds_sum": "Total seconds of the requests timed, by message type.",
        "ninep_read_bytes_total": "Data bytes sent in Rread replies.",
        "ninep_written_bytes_total": "Data bytes taken in Twrite requests and acknowledged by Rwrite.",
        "ninep_flushes_total": "Tflush outcomes: aborted (nothing changed), after_reply (the request had completed), not_in_flight.",
        "ninep_localio_proofs_total": "localio locality proofs, accepted or refused.",
        "ninep_localio_grants_total": "localio descriptor grants: granted, or the reason it was refused.",
        "ninep_localio_revocations_total": "localio grants revoked (shutdown, reload, SIGUSR2), answered to the clients' revocation polls.",
        "ninep_connections": "Client connections open now.",
        "ninep_connections_accepted_total": "Client connections accepted since start.",
        "ninep_connections_refused_total": "Client connections refused (--max-connections, shutting down).",
        "ninep_fids": "Fids held by all clients now.",
        "ninep_memory_grants_total": "Buffer requests granted, by wait site.",
        "ninep_memory_waits_total": "Buffer requests that had to wait for memory, by wait site.",
        "ninep_memory_wait": "How long requests waited for memory, in seconds, by wait site.",
        "ninep_memory_wait_samples_dropped_total": "Memory wait samples not recorded because the sample ring was full.",
        "ninep_memory_waiters": "Requests waiting for memory now.",
        "ninep_pool_buffers": "Buffers in each pool (small, large, parking reserve).",
        "ninep_pool_free_buffers": "Buffers free now in each pool.",
        "ninep_pool_buffer_bytes": "Size of one buffer of each pool, in bytes.",
        "ninep_client_requests_total": "Requests answered for this client connection.",
        "ninep_client_errors_total": "Requests of this client connection answered with Rlerror.",
        "ninep_client_request_seconds_total": "Total seconds of this client connection's requests.",
        "ninep_client_read_bytes_total": "Data bytes read by this client connection.",
        "ninep_client_written_bytes_total": "Data bytes written by this client connection.",
        "ninep_client_fids": "Fids this client connection holds now.",
        "ninep_client_requests_in_flight": "Requests of this client connection being served now.",
        "ninep_client_unsent_replies": "Replies of this client connection queued and not yet sent.",
        "ninep_client_buffers": "Large and small buffers this client connection holds now.",
    ]

    /// `exposition` with a `# HELP` line before each `# TYPE` line whose family has a text
    /// (and none yet). Off the request path: runs once per scrape.
    static func annotate(_ exposition: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(exposition.count + text.count * 96)
        var previousLine = ArraySlice<UInt8>()
        for line in exposition.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if line.starts(with: typePrefix), !previousLine.starts(with: helpPrefix) {
                let name = line.dropFirst(typePrefix.count).prefix { $0 != UInt8(ascii: " ") }
                if let help = text[String(decoding: name, as: UTF8.self)] {
                    out.append(contentsOf: helpPrefix)
                    out.append(contentsOf: name)
                    out.append(UInt8(ascii: " "))
                    out.append(contentsOf: help.utf8)
                    out.append(UInt8(ascii: "\n"))
                }
            }
            out.append(contentsOf: line)
            out.append(UInt8(ascii: "\n"))
            previousLine = line
        }
        // split kept the empty piece after the final newline: drop the newline added for it.
        if exposition.last == UInt8(ascii: "\n") || exposition.isEmpty { out.removeLast() }
        return out
    }

    private static let typePrefix = Array("# TYPE ".utf8)
    private static let helpPrefix = Array("# HELP ".utf8)
}
