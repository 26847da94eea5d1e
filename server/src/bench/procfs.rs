//! What Linux's `/proc` tells about the server and the machine: the process listening
//! on a port (`/proc/net/tcp`, `/proc/net/tcp6`, then the sockets in `/proc/*/fd`),
//! its resident memory (`VmRSS`), the CPU model and the number of cores. Everything
//! here is best effort: on another system, or for another user's process, the answer
//! is `None` and the report says "n/a".

use std::path::Path;

/// The state of a listening socket in `/proc/net/tcp`.
const LISTEN: u8 = 0x0A;

/// One socket of `/proc/net/tcp` or `/proc/net/tcp6`: the local port, the state and
/// the socket's inode (which names it in `/proc/PID/fd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSocket {
    pub port: u16,
    pub state: u8,
    pub inode: u64,
}

/// Reads one line of `/proc/net/tcp(6)`:
/// `sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …`,
/// the address as hex `ADDR:PORT`. The header line, and anything malformed, is `None`.
pub fn parse_tcp_line(line: &str) -> Option<TcpSocket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 10 || !fields[0].ends_with(':') {
        return None;
    }
    let (_, port) = fields[1].rsplit_once(':')?;
    Some(TcpSocket {
        port: u16::from_str_radix(port, 16).ok()?,
        state: u8::from_str_radix(fields[3], 16).ok()?,
        inode: fields[9].parse().ok()?,
    })
}

/// The inodes of the sockets listening on `port` in the text of `/proc/net/tcp(6)`.
pub fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .filter_map(parse_tcp_line)
        .filter(|socket| socket.port == port && socket.state == LISTEN && socket.inode != 0)
        .map(|socket| socket.inode)
        .collect()
}

/// The process listening on `port` on this machine, if this user may see it: the
/// listening sockets' inodes, then the process holding one of them open.
pub fn listening_pid(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            inodes.extend(listening_inodes(&text, port));
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|inode| format!("socket:[{inode}]")).collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if holds_socket(&entry.path(), &wanted) {
            return Some(pid);
        }
    }
    None
}

/// Whether the process at `/proc/PID` has one of `wanted` (`socket:[INODE]`) open.
fn holds_socket(process: &Path, wanted: &[String]) -> bool {
    let Ok(fds) = std::fs::read_dir(process.join("fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|link| link.to_str().map(|link| wanted.iter().any(|w| w == link)))
            .unwrap_or(false)
    })
}

/// `VmRSS` in KiB from the text of `/proc/PID/status`.
pub fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let kib = words.next()?.parse().ok()?;
    (words.next() == Some("kB")).then_some(kib)
}

/// The resident memory of process `pid` in KiB, or `None` when it cannot be read.
pub fn rss_kib(pid: u32) -> Option<u64> {
    parse_vm_rss_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The first `model name` of the text of `/proc/cpuinfo`.
pub fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "model name")
        .map(|(_, value)| value.trim().to_string())
        .filter(|model| !model.is_empty())
}

/// This machine's CPU model, or "unknown".
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| parse_cpu_model(&text))
        .unwrap_or_else(|| "unknown".to_string())
}

/// The cores this process may run on.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 123456 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0BB8 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 123999 1 0000000000000000 20 4 30 10 -1
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0BB8 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 424242 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn a_proc_net_tcp_line_gives_port_state_and_inode() {
        let line = TCP.lines().nth(1).unwrap();
        assert_eq!(
            parse_tcp_line(line),
            Some(TcpSocket {
                port: 3000,
                state: LISTEN,
                inode: 123456
            })
        );
        let line = TCP6.lines().nth(1).unwrap();
        assert_eq!(
            parse_tcp_line(line).map(|s| (s.port, s.inode)),
            Some((3000, 424242))
        );
        assert_eq!(parse_tcp_line(TCP.lines().next().unwrap()), None, "the header");
        assert_eq!(
            parse_tcp_line("   0: 0100007F:zz 00000000:0000 0A a b c d e 5"),
            None
        );
        assert_eq!(parse_tcp_line(""), None);
    }

    #[test]
    fn only_the_listening_sockets_of_the_port_count() {
        // The connected socket on 3000 (state 01) and the listener on 8080 are not it.
        assert_eq!(listening_inodes(TCP, 3000), vec![123456]);
        assert_eq!(listening_inodes(TCP, 8080), vec![777]);
        assert_eq!(listening_inodes(TCP, 4000), Vec::<u64>::new());
        assert_eq!(listening_inodes(TCP6, 3000), vec![424242]);
    }

    #[test]
    fn vm_rss_and_the_cpu_model_are_read_from_their_files() {
        let status = "Name:\tbehalf\nVmPeak:\t  900000 kB\nVmRSS:\t   48256 kB\nThreads:\t5\n";
        assert_eq!(parse_vm_rss_kib(status), Some(48256));
        assert_eq!(parse_vm_rss_kib("Name:\tkthreadd\n"), None);
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(parse_cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(parse_cpu_model("processor\t: 0\n"), None);
    }

    #[test]
    fn this_process_is_found_by_its_listening_port_and_its_memory_read() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listening_pid(port), Some(std::process::id()));
        drop(listener);
        assert_eq!(listening_pid(port), None, "no one listens there any more");
        assert!(rss_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}
