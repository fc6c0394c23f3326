//! The DNS step: a host's A and AAAA records with their TTLs, as the check's
//! resolver (the system's, or the site's own name server) answers them.

use std::net::IpAddr;

use hickory_resolver::proto::rr::{RData, RecordType};
use mailsite_shared::report::Step;

use super::Running;
use crate::explain;
use crate::net::Net;

/// Looks up a host's A and AAAA records with their TTLs; the addresses come back for
/// the TCP steps.
pub async fn dns(net: &Net, host: &str) -> (Step, Vec<IpAddr>) {
    let mut run = Running::new(
        format!("dns:{host}"),
        "dns",
        format!("DNS lookup of {host}"),
    );
    run.detail("host", host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        run.detail("address", ip);
        return (run.pass(), vec![ip]);
    }
    let fqdn = format!("{}.", host.trim_end_matches('.'));
    let mut ips = Vec::new();
    let mut nx = false;
    let mut error = None;
    let mut silent = false;
    for rtype in [RecordType::A, RecordType::AAAA] {
        let lookup =
            tokio::time::timeout(net.step_timeout, net.resolver.lookup(fqdn.as_str(), rtype)).await;
        match lookup {
            Ok(Ok(answer)) => {
                for record in answer.answers() {
                    let ip = match &record.data {
                        RData::A(a) => IpAddr::V4(a.0),
                        RData::AAAA(a) => IpAddr::V6(a.0),
                        RData::CNAME(c) => {
                            run.detail("alias", format!("{host} -> {}", c.0));
                            continue;
                        }
                        _ => continue,
                    };
                    run.detail(
                        if ip.is_ipv4() { "a" } else { "aaaa" },
                        format!("{ip} (ttl {} s)", record.ttl),
                    );
                    ips.push(ip);
                }
            }
            Ok(Err(e)) if e.is_nx_domain() => nx = true,
            Ok(Err(e)) if e.is_no_records_found() => {}
            Ok(Err(e)) if e.to_string().contains("timed out") => silent = true,
            Ok(Err(e)) => error = Some(e.to_string()),
            Err(_) => silent = true,
        }
    }
    if !ips.is_empty() {
        let list: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
        run.detail("maps_to", format!("{host} -> {}", list.join(", ")));
        return (run.pass(), ips);
    }
    let problem = if nx {
        explain::dns_no_such_name(host)
    } else if silent && error.is_none() {
        run.detail("dns_server", &net.dns_server);
        explain::dns_not_answering(host, &net.dns_server)
    } else {
        explain::dns_failed(host, error.as_deref().unwrap_or("no A or AAAA record"))
    };
    (run.fail(problem), ips)
}
