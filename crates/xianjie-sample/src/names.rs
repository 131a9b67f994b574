//! Realistic values for sample rows: personal names, company and shop names, addresses in
//! 南京市玄武区, mobile numbers, unified social credit codes and resident ID numbers with valid
//! check characters (and corrupted copies of them), and money strings.

use rand::Rng;
use xianjie_model::{ResidentId, Uscc};

use super::SampleError;
use super::calendar::Day;

/// Common surnames, weighted roughly by frequency through repetition of the most common ones.
const SURNAMES: &[&str] = &[
    "王", "王", "李", "李", "张", "张", "刘", "刘", "陈", "陈", "杨", "黄", "赵", "吴", "周", "徐",
    "孙", "马", "朱", "胡", "郭", "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩",
    "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶",
    "程", "苏", "魏", "吕", "丁", "任", "沈", "姚", "卢", "姜", "崔", "钟", "谭", "陆", "汪", "范",
    "金", "石", "廖", "贾", "夏", "韦", "方", "白", "邹", "孟", "熊", "秦", "邱", "江", "尹", "薛",
    "段", "雷", "侯", "龙", "史", "陶", "黎", "贺", "顾", "毛", "郝", "龚", "邵", "万", "钱", "严",
    "武", "戴", "孔", "汤", "殷", "季", "缪", "葛",
];

/// Compound surnames, rare.
const COMPOUND_SURNAMES: &[&str] = &["欧阳", "司马", "诸葛", "上官", "东方"];

/// Characters of given names (every one a three-byte UTF-8 character).
const GIVEN: &str = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂文辉建华国庆海波宁鹏飞玉红晨宇浩然子涵\
欣怡佳琪梓萱思雨嘉俊博轩泽晓婷雪梅春燕志坚德胜金凤永成立新林莉慧倩颖琳丹睿航凯旭阳峰斌亮瑞彬诚毅昊天\
婧蕾瑶璐晗宏琦卓楠妍鑫越铭翔昕悦晶婉清蓉芸雯菲岚晟骏皓";

/// Characters of trade names (字号).
const TRADE: &str = "鑫源恒泰华联金陵钟山紫汇宏达瑞祥嘉禾佳美百利德润盛世新港天元启明蓝海博雅鼎广永昌聚福和泽\
同安康锦程通鸿运誉中纳君悦乐易优品万家兴隆茂晟禧骏弘信诚宁苏玄武秦淮梧桐雅颂";

/// Streets and roads of 玄武区.
const STREETS: &[&str] = &[
    "中山路",
    "中山东路",
    "北京东路",
    "珠江路",
    "龙蟠路",
    "龙蟠中路",
    "玄武大道",
    "太平北路",
    "长江路",
    "丹凤街",
    "成贤街",
    "进香河路",
    "峨嵋路",
    "后宰门街",
    "黄埔路",
    "童卫路",
    "板仓街",
    "红山路",
    "花园路",
    "徐庄路",
    "中央路",
    "钟灵街",
    "卫岗",
    "蒋王庙街",
    "岗子村",
    "四牌楼",
    "樱驼村",
    "小营",
    "锁金村",
    "新庄",
    "龙蟠里",
    "竺桥",
    "浮桥",
    "大石桥街",
    "学府路",
    "环陵路",
    "板仓街",
];

/// The sub-districts (街道) of 玄武区.
const SUBDISTRICTS: &[&str] = &[
    "梅园新村街道",
    "新街口街道",
    "玄武门街道",
    "锁金村街道",
    "红山街道",
    "孝陵卫街道",
    "玄武湖街道",
];

/// Division codes of resident-ID holders: mostly Nanjing districts, some from elsewhere.
const ID_DIVISIONS: &[&str] = &[
    "320102", "320102", "320102", "320104", "320105", "320106", "320111", "320113", "320114",
    "320115", "320116", "320117", "320124", "321081", "320282", "340104", "341102", "370102",
    "420106", "320902", "321302",
];

/// A random element of a non-empty slice (the first element of an empty one is never asked for).
pub(crate) fn pick<'a, R: Rng, T>(rng: &mut R, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// One random character of a string made only of three-byte UTF-8 characters.
fn pick_cjk<'a, R: Rng>(rng: &mut R, chars: &'a str) -> &'a str {
    let i = rng.gen_range(0..chars.len() / 3) * 3;
    chars.get(i..i + 3).unwrap_or("")
}

/// A personal name: a surname and one or two given-name characters.
pub(crate) fn person<R: Rng>(rng: &mut R) -> String {
    let mut s = String::with_capacity(12);
    if rng.gen_bool(0.01) {
        s.push_str(pick::<_, &str>(rng, COMPOUND_SURNAMES));
    } else {
        s.push_str(pick::<_, &str>(rng, SURNAMES));
    }
    s.push_str(pick_cjk(rng, GIVEN));
    if rng.gen_bool(0.7) {
        s.push_str(pick_cjk(rng, GIVEN));
    }
    s
}

/// Two different personal names joined with `sep` (inspectors, case handlers).
pub(crate) fn two_people<R: Rng>(rng: &mut R, sep: &str) -> String {
    let a = person(rng);
    let mut b = person(rng);
    while b == a {
        b = person(rng);
    }
    format!("{a}{sep}{b}")
}

/// A two-character trade name (字号), such as 鑫源.
pub(crate) fn trade_name<R: Rng>(rng: &mut R) -> String {
    let a = pick_cjk(rng, TRADE);
    let mut b = pick_cjk(rng, TRADE);
    while b == a {
        b = pick_cjk(rng, TRADE);
    }
    format!("{a}{b}")
}

/// A company name: 南京 (sometimes 江苏) + 字号 + 行业 + 有限公司.
pub(crate) fn company<R: Rng>(rng: &mut R, industries: &[&str]) -> String {
    let place = if rng.gen_bool(0.12) {
        "江苏"
    } else {
        "南京"
    };
    let suffix = if rng.gen_bool(0.08) {
        "有限责任公司"
    } else {
        "有限公司"
    };
    format!(
        "{place}{}{}{suffix}",
        trade_name(rng),
        pick(rng, industries)
    )
}

/// An individual business name: 南京市玄武区 + 字号 (or the owner's surname) + shop type.
pub(crate) fn shop<R: Rng>(rng: &mut R, shops: &[&str]) -> String {
    let name = if rng.gen_bool(0.25) {
        format!("{}记", pick(rng, SURNAMES))
    } else {
        trade_name(rng)
    };
    format!("南京市玄武区{name}{}", pick(rng, shops))
}

/// A social organisation's name and the USCC prefix of its registration kind
/// (51 social group, 52 private non-enterprise unit).
pub(crate) fn organisation<R: Rng>(rng: &mut R) -> (String, &'static str) {
    const KINDS: &[(&str, &str)] = &[
        ("养老服务中心", "52"),
        ("社会工作服务中心", "52"),
        ("培训学校", "52"),
        ("文化艺术团", "52"),
        ("社区服务中心", "52"),
        ("商会", "51"),
        ("志愿者协会", "51"),
        ("餐饮行业协会", "51"),
    ];
    let (kind, prefix) = *pick(rng, KINDS);
    (format!("南京市玄武区{}{kind}", trade_name(rng)), prefix)
}

/// A farmers' cooperative name (农民专业合作社), USCC prefix 93.
pub(crate) fn cooperative<R: Rng>(rng: &mut R) -> String {
    const KINDS: &[&str] = &["蔬菜", "花卉苗木", "茶叶", "水产养殖", "果品"];
    format!("南京{}{}专业合作社", trade_name(rng), pick(rng, KINDS))
}

/// An address in 南京市玄武区, sometimes with its sub-district and a building and room.
pub(crate) fn address<R: Rng>(rng: &mut R) -> String {
    let sub = if rng.gen_bool(0.3) {
        pick(rng, SUBDISTRICTS)
    } else {
        ""
    };
    let street = pick(rng, STREETS);
    let number = rng.gen_range(1..=320);
    if rng.gen_bool(0.45) {
        let building = rng.gen_range(1..=28);
        let room = rng.gen_range(1..=24) * 100 + rng.gen_range(1..=8);
        format!("南京市玄武区{sub}{street}{number}号{building}幢{room}室")
    } else {
        format!("南京市玄武区{sub}{street}{number}号")
    }
}

/// A mobile number, 1[3-9] followed by nine digits; now and then a Nanjing landline.
pub(crate) fn phone<R: Rng>(rng: &mut R) -> String {
    if rng.gen_bool(0.08) {
        return format!("025-{}", rng.gen_range(52_000_000..=86_999_999));
    }
    format!(
        "1{}{:09}",
        rng.gen_range(3..=9),
        rng.gen_range(0..1_000_000_000u32)
    )
}

/// The GB 32100-2015 character set.
const USCC_CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/// A valid USCC registered in 玄武区: `prefix` (two characters, e.g. 91 company, 92 individual
/// business) + 320102 + nine characters + check character. Newer codes start with `MA`.
pub(crate) fn uscc<R: Rng>(rng: &mut R, prefix: &str) -> Result<String, SampleError> {
    let mut body = String::with_capacity(18);
    body.push_str(prefix);
    body.push_str("320102");
    let free = if rng.gen_bool(0.5) {
        body.push_str("MA");
        7
    } else {
        9
    };
    for _ in 0..free {
        let i = rng.gen_range(0..USCC_CHARS.len());
        body.push_str(USCC_CHARS.get(i..i + 1).unwrap_or("0"));
    }
    Uscc::with_check(&body)
        .map(|u| u.as_str().to_string())
        .ok_or_else(|| SampleError::Internal(format!("no USCC check character for {body}")))
}

/// A valid resident ID: a division code, a birth date in 1950..=2003, a sequence number whose
/// parity matches `male`, and the check character.
pub(crate) fn resident_id<R: Rng>(rng: &mut R, male: bool) -> Result<String, SampleError> {
    let birth =
        super::calendar::between(rng, Day::from_ymd(1950, 1, 1), Day::from_ymd(2003, 12, 31));
    let mut seq = rng.gen_range(1..=499) * 2;
    if male {
        seq -= 1;
    }
    let mut body = String::with_capacity(18);
    body.push_str(pick::<_, &str>(rng, ID_DIVISIONS));
    birth.push(&mut body, "");
    body.push_str(&format!("{seq:03}"));
    ResidentId::with_check(&body)
        .map(|id| id.as_str().to_string())
        .ok_or_else(|| SampleError::Internal("no resident ID check character".into()))
}

/// `code` with its last (check) character replaced by a different one from `alphabet`.
fn wrong_check<R: Rng>(rng: &mut R, code: &str, alphabet: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    let Some(last) = chars.last().copied() else {
        return code.to_string();
    };
    let options: Vec<char> = alphabet.chars().filter(|&c| c != last).collect();
    if let Some(slot) = chars.last_mut() {
        *slot = *pick(rng, &options);
    }
    chars.into_iter().collect()
}

/// A USCC with a wrong check character.
pub(crate) fn corrupt_uscc<R: Rng>(rng: &mut R, code: &str) -> String {
    wrong_check(rng, code, USCC_CHARS)
}

/// A resident ID with a wrong check character.
pub(crate) fn corrupt_resident_id<R: Rng>(rng: &mut R, id: &str) -> String {
    wrong_check(rng, id, "0123456789X")
}

/// A fine in whole yuan between `min` and `max`, rounded to a step that suits its size.
pub(crate) fn fine_yuan<R: Rng>(rng: &mut R, min: u64, max: u64) -> u64 {
    let step = match max {
        0..=5_000 => 50,
        5_001..=100_000 => 100,
        _ => 1_000,
    };
    let lo = min.div_ceil(step).max(1);
    let hi = (max / step).max(lo);
    rng.gen_range(lo..=hi) * step
}

/// An amount of fen as yuan with exactly two decimals.
pub(crate) fn yuan_2dp(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

/// An amount of fen as 万元 with as few decimals as needed (at most six): 200000 fen → `0.2`.
pub(crate) fn wanyuan(fen: u64) -> String {
    let whole = fen / 1_000_000;
    let frac = fen % 1_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:06}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A yuan amount with three decimals, the last non-zero (too precise for yuan).
pub(crate) fn too_precise_yuan<R: Rng>(rng: &mut R) -> String {
    format!(
        "{}.{:02}{}",
        rng.gen_range(100..20_000),
        rng.gen_range(0..100),
        rng.gen_range(1..10)
    )
}

/// A 万元 amount with seven decimals, the last non-zero (too precise for 万元).
pub(crate) fn too_precise_wanyuan<R: Rng>(rng: &mut R) -> String {
    format!(
        "{}.{:06}{}",
        rng.gen_range(0..3),
        rng.gen_range(0..1_000_000),
        rng.gen_range(1..10)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use xianjie_model::{Fen, MoneyUnit};

    /// Whether a (valid) resident ID belongs to a man: the 17th digit is odd.
    fn is_male(id: &str) -> bool {
        id.as_bytes().get(16).is_some_and(|b| b % 2 == 1)
    }

    #[test]
    fn character_pools_are_three_byte_characters() {
        for pool in [GIVEN, TRADE] {
            assert_eq!(pool.len(), pool.chars().count() * 3);
        }
        assert!(SURNAMES.iter().all(|s| s.chars().count() == 1));
    }

    #[test]
    fn identifiers_are_valid_and_corruptions_are_not() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for _ in 0..500 {
            let u = uscc(&mut rng, "91").unwrap();
            assert!(Uscc::parse(&u).is_ok(), "{u}");
            assert!(u.starts_with("91320102"));
            assert!(Uscc::parse(&corrupt_uscc(&mut rng, &u)).is_err());
            let male = rng.gen_bool(0.5);
            let id = resident_id(&mut rng, male).unwrap();
            assert!(ResidentId::parse(&id).is_ok(), "{id}");
            assert_eq!(is_male(&id), male);
            assert!(ResidentId::parse(&corrupt_resident_id(&mut rng, &id)).is_err());
            let p = phone(&mut rng);
            assert!(p.len() == 11 || p.starts_with("025-"), "{p}");
        }
    }

    #[test]
    fn money_strings() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        assert_eq!(wanyuan(200_000), "0.2");
        assert_eq!(wanyuan(3_000_000), "3");
        assert_eq!(wanyuan(1_234_567), "1.234567");
        assert_eq!(yuan_2dp(128_640), "1286.40");
        for _ in 0..200 {
            let f = fine_yuan(&mut rng, 200, 500_000);
            assert!((200..=500_000).contains(&f), "{f}");
            assert!(Fen::parse(&too_precise_yuan(&mut rng), MoneyUnit::Yuan).is_err());
            assert!(Fen::parse(&too_precise_wanyuan(&mut rng), MoneyUnit::Wanyuan).is_err());
        }
    }
}
