//! BODYSTRUCTURE (RFC 3501 7.4.2) as a skeleton MIME message: the same tree
//! of parts, each with its Content-Type and Content-Disposition and no
//! content. `message::Message::with_structure` finds the attachments in it
//! by exactly the rules it applies to a whole message, so attachment
//! conditions are decided without downloading any part, and `run` decides
//! as `test` does on the full file.

use imap_proto::{BodyParams, BodyStructure, ContentDisposition, ContentType};

/// The skeleton of a message whose BODYSTRUCTURE is `structure`.
pub fn skeleton(structure: &BodyStructure<'_>) -> Vec<u8> {
    let mut out = String::new();
    let mut boundaries = 0;
    part(&mut out, structure, &mut boundaries);
    out.into_bytes()
}

fn part(out: &mut String, structure: &BodyStructure<'_>, boundaries: &mut usize) {
    match structure {
        BodyStructure::Multipart { common, bodies, .. } => {
            // The server's boundary is not needed; a fresh one cannot occur
            // in a skeleton whose parts are empty.
            *boundaries += 1;
            let boundary = format!("skeleton-{boundaries}");
            content_type(out, &common.ty, Some(&boundary));
            disposition(out, common.disposition.as_ref());
            out.push_str("\r\n");
            for body in bodies {
                out.push_str(&format!("--{boundary}\r\n"));
                part(out, body, boundaries);
                out.push_str("\r\n");
            }
            out.push_str(&format!("--{boundary}--\r\n"));
        }
        BodyStructure::Message { common, body, .. } => {
            content_type(out, &common.ty, None);
            disposition(out, common.disposition.as_ref());
            out.push_str("\r\n");
            // The enclosed message's own header is its top part's.
            part(out, body, boundaries);
        }
        BodyStructure::Basic { common, .. } | BodyStructure::Text { common, .. } => {
            content_type(out, &common.ty, None);
            disposition(out, common.disposition.as_ref());
            out.push_str("\r\n");
        }
    }
}

fn content_type(out: &mut String, ty: &ContentType<'_>, boundary: Option<&str>) {
    out.push_str(&format!(
        "Content-Type: {}/{}",
        clean(&ty.ty),
        clean(&ty.subtype)
    ));
    params(out, &ty.params, boundary.is_some());
    if let Some(b) = boundary {
        out.push_str(&format!("; boundary=\"{b}\""));
    }
    out.push_str("\r\n");
}

fn disposition(out: &mut String, d: Option<&ContentDisposition<'_>>) {
    if let Some(d) = d {
        out.push_str(&format!("Content-Disposition: {}", clean(&d.ty)));
        params(out, &d.params, false);
        out.push_str("\r\n");
    }
}

/// Parameters as they were in the message. RFC 2231 extended values
/// (`name*=utf-8''...`, `name*0*=...`) may not be quoted; every other value
/// is written as a quoted string, so the parser decodes both as it would
/// have in the original header.
fn params(out: &mut String, params: &BodyParams<'_>, skip_boundary: bool) {
    for (name, value) in params.iter().flatten() {
        let name = clean(name);
        if name.is_empty() || (skip_boundary && name.eq_ignore_ascii_case("boundary")) {
            continue;
        }
        let value = clean(value);
        if name.ends_with('*') {
            // charset'language'percent-encoded text: nothing in it may
            // end the parameter.
            let value: String = value
                .chars()
                .filter(|c| !c.is_whitespace() && !matches!(c, ';' | '"'))
                .collect();
            out.push_str(&format!("; {name}={value}"));
        } else {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            out.push_str(&format!("; {name}=\"{escaped}\""));
        }
    }
}

/// A string as the server meant it: imap-proto leaves the quoting of a
/// quoted string (RFC 3501 4.3: `\"` and `\\`) in. A literal with those
/// two-character sequences in it would lose a backslash; servers send such
/// strings quoted. Line breaks are dropped, so a server's string cannot add
/// header fields to the skeleton.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('"' | '\\')) => out.extend(chars.next()),
            '\r' | '\n' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use imap_proto::{BodyContentCommon, BodyContentSinglePart, ContentEncoding};

    use super::*;

    fn leaf<'a>(
        ty: &'a str,
        sub: &'a str,
        params: &[(&'a str, &'a str)],
        disp: Option<(&'a str, &[(&'a str, &'a str)])>,
    ) -> BodyStructure<'a> {
        let p = |ps: &[(&'a str, &'a str)]| {
            (!ps.is_empty()).then(|| {
                ps.iter()
                    .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
                    .collect()
            })
        };
        BodyStructure::Basic {
            common: BodyContentCommon {
                ty: ContentType {
                    ty: Cow::Borrowed(ty),
                    subtype: Cow::Borrowed(sub),
                    params: p(params),
                },
                disposition: disp.map(|(t, ps)| ContentDisposition {
                    ty: Cow::Borrowed(t),
                    params: p(ps),
                }),
                language: None,
                location: None,
            },
            other: BodyContentSinglePart {
                id: None,
                md5: None,
                description: None,
                transfer_encoding: ContentEncoding::Base64,
                octets: 10,
            },
            extension: None,
        }
    }

    fn multipart<'a>(sub: &'a str, bodies: Vec<BodyStructure<'a>>) -> BodyStructure<'a> {
        BodyStructure::Multipart {
            common: BodyContentCommon {
                ty: ContentType {
                    ty: Cow::Borrowed("multipart"),
                    subtype: Cow::Borrowed(sub),
                    params: Some(vec![(Cow::Borrowed("boundary"), Cow::Borrowed("real"))]),
                },
                disposition: None,
                language: None,
                location: None,
            },
            bodies,
            extension: None,
        }
    }

    #[test]
    fn skeletons_keep_the_tree_types_and_parameters() {
        let s = multipart(
            "mixed",
            vec![
                leaf("text", "plain", &[("charset", "utf-8")], None),
                leaf(
                    "application",
                    "pdf",
                    &[("name", "a \"b\".pdf")],
                    Some(("attachment", &[("filename*", "utf-8''%E2%82%AC.pdf")])),
                ),
            ],
        );
        let text = String::from_utf8(skeleton(&s)).unwrap();
        assert_eq!(
            text,
            "Content-Type: multipart/mixed; boundary=\"skeleton-1\"\r\n\r\n\
             --skeleton-1\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\r\n\r\n\
             --skeleton-1\r\nContent-Type: application/pdf; name=\"a \\\"b\\\".pdf\"\r\n\
             Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.pdf\r\n\r\n\r\n\
             --skeleton-1--\r\n"
        );
    }

    #[test]
    fn a_hostile_server_string_cannot_add_header_fields() {
        let s = leaf(
            "application",
            "pdf\r\nX-Evil: 1",
            &[("name", "a\r\nX-Evil: 2")],
            None,
        );
        let text = String::from_utf8(skeleton(&s)).unwrap();
        assert!(!text.contains("\r\nX-Evil"), "{text:?}");
    }
}
