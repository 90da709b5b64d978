use super::*;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn options_select_cases_by_number_or_name() {
    let o = Options::parse(&args(&["--long", "--case", "3", "--case", "soak"])).unwrap();
    assert_eq!(o.mode, Mode::Long);
    let picked: Vec<u32> = CASES
        .iter()
        .filter(|c| o.only.iter().any(|w| selects(c, w)))
        .map(|c| c.id)
        .collect();
    assert_eq!(picked, [3, 24]);
    assert!(Options::parse(&args(&["--case", "99"])).is_err());
    assert!(Options::parse(&args(&["--case"])).is_err());
    assert!(Options::parse(&args(&["--fast"])).is_err());
}

#[test]
fn case_ids_are_unique_and_in_order() {
    for (i, c) in CASES.iter().enumerate() {
        assert_eq!(c.id as usize, i + 1, "{}", c.name);
    }
}

#[test]
fn metric_sum_matches_the_name_and_every_label() {
    let text = "\
response_total{direction=\"inbound\",error=\"upstream\"} 3
response_total{direction=\"outbound\",error=\"upstream\"} 4
response_total{direction=\"inbound\",error=\"connect\"} 5
response_total_other{error=\"upstream\"} 100
";
    assert_eq!(
        metric_sum(text, "response_total", &["error=\"upstream\""]),
        7.0
    );
    assert_eq!(
        metric_sum(text, "response_total", &["inbound", "upstream"]),
        3.0
    );
    assert_eq!(metric_sum(text, "request_total", &[]), 0.0);
}

#[test]
fn a_failed_expectation_breaks_the_case_and_says_why() {
    let mut r = Report::new("tried");
    r.note("measured");
    r.expect(true, "fine");
    assert_eq!(r.outcome().verdict, Verdict::Holds);
    let mut r = Report::new("tried");
    r.expect(false, "too slow");
    let o = r.outcome();
    assert_eq!(o.verdict, Verdict::Broken);
    assert_eq!(o.measured, "tried — broken: too slow");
}

#[test]
fn responses_are_read_with_length_chunked_or_to_the_end() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhelloEXTRA";
    let r = wire::read_response(&mut &raw[..], 3).unwrap();
    assert_eq!(
        (r.status, r.body_len, r.body.as_slice()),
        (200, 5, &b"hel"[..])
    );
    assert!(r.closes());
    let raw = b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    let r = wire::read_response(&mut &raw[..], 100).unwrap();
    assert_eq!((r.status, r.body_text().as_str()), (502, "abcde"));
    assert!(!r.closes());
    let raw = b"HTTP/1.0 408 Request Timeout\r\n\r\nbye";
    let r = wire::read_response(&mut &raw[..], 100).unwrap();
    assert_eq!((r.status, r.body_len), (408, 3));
    assert!(
        wire::read_response(
            &mut &b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab"[..],
            9
        )
        .is_err()
    );
    assert!(wire::read_response(&mut &b""[..], 9).is_err());
}

#[test]
fn trickle_outcomes_are_summarized_by_status() {
    let ended = |status, after: Option<u64>| wire::Ended {
        status,
        after: after.map(Duration::from_millis),
        sent_all: false,
    };
    let all = [
        ended(Some(408), Some(10)),
        ended(Some(408), Some(20)),
        ended(None, Some(5)),
        ended(None, None),
    ];
    assert_eq!(wire::summarize(&all), "408×2 closed×1 open×1");
}
