//! The district power-sunshine system's export (`sunshine` adapter): one GB18030 CSV with Chinese
//! headers, one row per enforcement case (办件) of the district's own departments. Rows are
//! generated and encoded one at a time, so the writer's memory does not grow with the row count.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use encoding_rs::GB18030;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::bad::{BadCounts, BadKind, BadPicker, KeyRing};
use super::calendar::{self, Day, FIRST, LAST};
use super::names::{self, pick};
use super::{SUNSHINE, SampleError, SampleFile};

/// The CSV header: every source column named in the adapter's `[fields]` table.
pub(crate) const HEADER: [&str; 39] = [
    "办件编号",
    "办件名称",
    "办件类型",
    "执法主体名称",
    "执法主体统一社会信用代码",
    "案由",
    "当事人类型",
    "当事人名称",
    "证件类型",
    "证件号码",
    "法定代表人",
    "当事人住址",
    "联系电话",
    "违法事实",
    "法律依据",
    "处理结果",
    "决定书文号",
    "处罚种类",
    "罚款金额（元）",
    "没收金额（元）",
    "许可类别",
    "许可证名称",
    "许可证编号",
    "有效期自",
    "有效期至",
    "立案日期",
    "决定日期",
    "结案日期",
    "是否重大执法决定",
    "是否法制审核",
    "是否集体讨论",
    "涉嫌犯罪",
    "移送状态",
    "移送日期",
    "接收机关",
    "移送文书号",
    "涉嫌罪名",
    "办件状态",
    "公开属性",
];

/// A kind of violation a unit punishes.
struct PenaltyCase {
    /// 案由.
    cause: &'static str,
    /// What the party did, as a clause of the facts.
    conduct: &'static str,
    /// The law (with book-title marks).
    law: &'static str,
    /// The penalty article of that law.
    article: &'static str,
    /// Usual combinations of penalty kinds, joined with 、.
    kinds: &'static [&'static str],
    /// Fine range in yuan.
    fine: (u64, u64),
    /// The crime suspected when the case is transferred; empty when none fits.
    crime: &'static str,
}

/// A licence a unit grants.
struct LicenseItem {
    /// 许可证名称.
    cert: &'static str,
    /// 许可类别 (one of the adapter's codes).
    category: &'static str,
    /// 法律依据.
    basis: &'static str,
    /// Validity in years.
    years: i32,
    /// Prefix of the licence number.
    prefix: &'static str,
}

/// One enforcement unit of the district, as listed in the adapter's `[[units]]`.
struct Unit {
    code: &'static str,
    name: &'static str,
    /// Short code in case ids (`XW-SJJ-2025-000123`).
    short: &'static str,
    /// Abbreviation in document numbers (`玄武市监罚〔2025〕12号`).
    abbr: &'static str,
    /// Industries of the companies it deals with.
    industries: &'static [&'static str],
    /// Shop types of the individual businesses it deals with.
    shops: &'static [&'static str],
    /// Share of parties that are social organisations.
    org_share: f64,
    /// Relative share of all cases.
    weight: u32,
    penalties: &'static [PenaltyCase],
    licenses: &'static [LicenseItem],
    /// Legal basis of inspections and other supervision.
    check_basis: &'static str,
    /// Fees it levies, with their legal basis.
    levies: &'static [(&'static str, &'static str)],
}

const fn case(
    cause: &'static str,
    conduct: &'static str,
    law: &'static str,
    article: &'static str,
    kinds: &'static [&'static str],
    fine: (u64, u64),
    crime: &'static str,
) -> PenaltyCase {
    PenaltyCase {
        cause,
        conduct,
        law,
        article,
        kinds,
        fine,
        crime,
    }
}

const fn licence(
    cert: &'static str,
    category: &'static str,
    basis: &'static str,
    years: i32,
    prefix: &'static str,
) -> LicenseItem {
    LicenseItem {
        cert,
        category,
        basis,
        years,
        prefix,
    }
}

const FOOD_LAW: &str = "《中华人民共和国食品安全法》";
const FIRE_LAW: &str = "《中华人民共和国消防法》";
const SAFETY_LAW: &str = "《中华人民共和国安全生产法》";

/// The twelve units of the adapter, in its order.
static UNITS: [Unit; 12] = [
    Unit {
        code: "11320102526018159L",
        name: "南京市玄武区市场监督管理局",
        short: "SJJ",
        abbr: "市监",
        industries: &[
            "餐饮管理",
            "商贸",
            "食品",
            "超市",
            "医药",
            "电子商务",
            "贸易",
            "服饰",
        ],
        shops: &[
            "便利店",
            "小吃店",
            "烟酒商行",
            "水果店",
            "副食品商行",
            "餐馆",
            "大药房",
            "服装店",
        ],
        org_share: 0.02,
        weight: 30,
        penalties: &[
            case(
                "销售过期食品",
                "在其经营场所销售超过保质期的预包装食品",
                FOOD_LAW,
                "第一百二十四条第一款第五项",
                &[
                    "没收违法所得、罚款",
                    "警告、罚款",
                    "罚款",
                    "没收违法所得、没收非法财物、罚款",
                ],
                (5_000, 50_000),
                "生产、销售不符合安全标准的食品罪",
            ),
            case(
                "未按规定公示年度报告",
                "未按照规定期限报送并公示年度报告",
                "《企业信息公示暂行条例》",
                "第十八条",
                &["警告", "罚款", "警告、罚款"],
                (1_000, 10_000),
                "",
            ),
            case(
                "无证经营",
                "未取得食品经营许可从事食品经营活动",
                FOOD_LAW,
                "第一百二十二条第一款",
                &["没收违法所得、罚款", "罚款"],
                (5_000, 50_000),
                "",
            ),
            case(
                "销售不合格产品",
                "销售经抽样检验不合格的电线电缆产品",
                "《中华人民共和国产品质量法》",
                "第四十九条",
                &["没收违法所得、罚款", "没收非法财物、罚款"],
                (2_000, 80_000),
                "生产、销售伪劣产品罪",
            ),
            case(
                "销售侵犯注册商标专用权的商品",
                "销售侵犯他人注册商标专用权的服装",
                "《中华人民共和国商标法》",
                "第六十条第二款",
                &["没收非法财物、罚款"],
                (10_000, 200_000),
                "销售假冒注册商标的商品罪",
            ),
            case(
                "未明码标价",
                "销售商品未按照规定明码标价",
                "《中华人民共和国价格法》",
                "第四十二条",
                &["警告", "罚款", "警告、罚款"],
                (500, 5_000),
                "",
            ),
            case(
                "发布虚假广告",
                "在其微信公众号发布含有虚假内容的广告",
                "《中华人民共和国广告法》",
                "第五十五条第一款",
                &["罚款", "罚款、没收违法所得"],
                (20_000, 200_000),
                "",
            ),
        ],
        licenses: &[
            licence(
                "食品经营许可证",
                "普通",
                "《中华人民共和国食品安全法》第三十五条",
                5,
                "JY1320102",
            ),
            licence(
                "药品经营许可证",
                "普通",
                "《中华人民共和国药品管理法》第五十二条",
                5,
                "苏AA025",
            ),
            licence(
                "特种设备使用登记证",
                "登记",
                "《中华人民共和国特种设备安全法》第三十三条",
                10,
                "梯11苏A",
            ),
        ],
        check_basis: "《中华人民共和国食品安全法》第一百一十条",
        levies: &[],
    },
    Unit {
        code: "11320102083016613W",
        name: "南京市玄武区城市管理局",
        short: "CGJ",
        abbr: "城管",
        industries: &[
            "建筑工程",
            "广告",
            "装饰工程",
            "餐饮管理",
            "物业管理",
            "渣土运输",
        ],
        shops: &["小吃店", "烧烤店", "水果店", "广告店", "五金店"],
        org_share: 0.02,
        weight: 15,
        penalties: &[
            case(
                "擅自设置户外广告",
                "未经批准擅自设置大型户外广告设施",
                "《城市市容和环境卫生管理条例》",
                "第三十六条",
                &["罚款", "警告"],
                (500, 5_000),
                "",
            ),
            case(
                "擅自占用城市道路",
                "擅自占用城市道路从事经营活动",
                "《城市道路管理条例》",
                "第四十二条",
                &["罚款", "警告"],
                (200, 2_000),
                "",
            ),
            case(
                "违法建设",
                "未取得建设工程规划许可证进行建设",
                "《中华人民共和国城乡规划法》",
                "第六十四条",
                &["罚款", "没收非法财物、罚款"],
                (10_000, 300_000),
                "",
            ),
            case(
                "油烟超标排放",
                "未安装油烟净化设施排放餐饮油烟",
                "《中华人民共和国大气污染防治法》",
                "第一百一十八条第一款",
                &["罚款"],
                (5_000, 50_000),
                "",
            ),
            case(
                "随意倾倒建筑垃圾",
                "将建筑垃圾随意倾倒在城市道路两侧",
                "《中华人民共和国固体废物污染环境防治法》",
                "第一百一十一条第一款第三项",
                &["罚款"],
                (5_000, 100_000),
                "污染环境罪",
            ),
        ],
        licenses: &[
            licence(
                "城市建筑垃圾处置核准证",
                "核准",
                "《城市建筑垃圾管理规定》第七条",
                1,
                "玄建垃准",
            ),
            licence(
                "户外广告设置许可证",
                "普通",
                "《城市市容和环境卫生管理条例》第十一条",
                3,
                "玄户广",
            ),
            licence(
                "城市道路临时占用许可证",
                "普通",
                "《城市道路管理条例》第三十一条",
                1,
                "玄占道",
            ),
        ],
        check_basis: "《城市市容和环境卫生管理条例》第四条",
        levies: &[
            ("城市道路占用费", "《城市道路管理条例》第三十七条"),
            (
                "城市生活垃圾处理费",
                "《江苏省城乡生活垃圾管理条例》第三十八条",
            ),
        ],
    },
    Unit {
        code: "11320102186091390J",
        name: "南京市玄武区卫生健康委员会",
        short: "WJW",
        abbr: "卫健",
        industries: &[
            "医疗管理",
            "口腔门诊部",
            "医疗美容门诊部",
            "健康管理",
            "酒店管理",
            "游泳健身",
        ],
        shops: &["诊所", "理发店", "美容院", "浴室", "足浴店"],
        org_share: 0.05,
        weight: 8,
        penalties: &[
            case(
                "非法行医",
                "未取得医疗机构执业许可证擅自开展诊疗活动",
                "《中华人民共和国基本医疗卫生与健康促进法》",
                "第九十九条第一款",
                &["没收违法所得、没收非法财物、罚款"],
                (50_000, 200_000),
                "非法行医罪",
            ),
            case(
                "公共场所卫生不合格",
                "未按照规定对顾客用品用具进行清洗、消毒",
                "《公共场所卫生管理条例实施细则》",
                "第三十六条",
                &["警告", "警告、罚款", "罚款"],
                (500, 2_000),
                "",
            ),
            case(
                "从业人员未取得健康证明",
                "安排未取得有效健康合格证明的从业人员直接为顾客服务",
                "《公共场所卫生管理条例实施细则》",
                "第三十八条",
                &["警告、罚款", "罚款"],
                (500, 5_000),
                "",
            ),
            case(
                "医疗废物管理不规范",
                "未按照规定对医疗废物进行分类收集",
                "《医疗废物管理条例》",
                "第四十六条",
                &["警告", "警告、罚款"],
                (2_000, 20_000),
                "",
            ),
        ],
        licenses: &[
            licence(
                "医疗机构执业许可证",
                "普通",
                "《医疗机构管理条例》第十五条",
                5,
                "PDY320102",
            ),
            licence(
                "公共场所卫生许可证",
                "普通",
                "《公共场所卫生管理条例》第八条",
                4,
                "玄卫公字",
            ),
            licence(
                "放射诊疗许可证",
                "普通",
                "《放射诊疗管理规定》第十六条",
                4,
                "苏卫放证字",
            ),
        ],
        check_basis: "《中华人民共和国基本医疗卫生与健康促进法》第八十六条",
        levies: &[],
    },
    Unit {
        code: "11320102996030824B",
        name: "南京市玄武区应急管理局",
        short: "YJJ",
        abbr: "应急",
        industries: &[
            "化工贸易",
            "物流",
            "仓储服务",
            "燃气",
            "酒店管理",
            "商业管理",
        ],
        shops: &["五金店", "燃气经营部", "烟花爆竹销售点"],
        org_share: 0.0,
        weight: 6,
        penalties: &[
            case(
                "未按规定开展安全生产教育培训",
                "未按照规定对从业人员进行安全生产教育和培训",
                SAFETY_LAW,
                "第九十七条第三项",
                &["罚款", "警告、罚款"],
                (10_000, 100_000),
                "",
            ),
            case(
                "未建立事故隐患排查治理制度",
                "未建立安全风险分级管控和隐患排查治理双重预防工作机制",
                SAFETY_LAW,
                "第一百零一条第五项",
                &["罚款"],
                (10_000, 100_000),
                "",
            ),
            case(
                "违规进行有限空间作业",
                "在有限空间作业前未进行安全风险辨识",
                "《工贸企业有限空间作业安全规定》",
                "第二十九条",
                &["警告、罚款"],
                (5_000, 30_000),
                "危险作业罪",
            ),
            case(
                "无证经营危险化学品",
                "未取得危险化学品经营许可证经营危险化学品",
                "《危险化学品安全管理条例》",
                "第七十七条第三款",
                &["没收违法所得、罚款", "罚款"],
                (100_000, 200_000),
                "非法经营罪",
            ),
        ],
        licenses: &[
            licence(
                "危险化学品经营许可证",
                "普通",
                "《危险化学品安全管理条例》第三十三条",
                3,
                "苏宁玄危化经字",
            ),
            licence(
                "烟花爆竹经营（零售）许可证",
                "普通",
                "《烟花爆竹安全管理条例》第十九条",
                1,
                "（苏）YH经",
            ),
        ],
        check_basis: "《中华人民共和国安全生产法》第六十五条",
        levies: &[],
    },
    Unit {
        code: "11320102628194821U",
        name: "南京市玄武区人力资源和社会保障局",
        short: "RSJ",
        abbr: "人社",
        industries: &[
            "建筑劳务",
            "人力资源",
            "保安服务",
            "餐饮管理",
            "物业管理",
            "家政服务",
        ],
        shops: &["餐馆", "美发店", "洗车店"],
        org_share: 0.03,
        weight: 5,
        penalties: &[
            case(
                "拖欠劳动者工资",
                "无故拖欠十余名劳动者工资",
                "《保障农民工工资支付条例》",
                "第五十四条",
                &["罚款", "限制开展生产经营活动、罚款"],
                (20_000, 100_000),
                "拒不支付劳动报酬罪",
            ),
            case(
                "违反工作时间规定",
                "违反工作时间和休息休假规定延长劳动者工作时间",
                "《劳动保障监察条例》",
                "第二十五条",
                &["警告", "罚款"],
                (1_000, 20_000),
                "",
            ),
            case(
                "非法使用童工",
                "非法招用未满十六周岁的未成年人",
                "《禁止使用童工规定》",
                "第六条",
                &["罚款"],
                (5_000, 50_000),
                "雇用童工从事危重劳动罪",
            ),
            case(
                "未经许可经营劳务派遣业务",
                "未经许可擅自经营劳务派遣业务",
                "《中华人民共和国劳动合同法》",
                "第九十二条第一款",
                &["没收违法所得、罚款"],
                (10_000, 50_000),
                "",
            ),
        ],
        licenses: &[
            licence(
                "劳务派遣经营许可证",
                "普通",
                "《中华人民共和国劳动合同法》第五十七条",
                3,
                "320102LW",
            ),
            licence(
                "人力资源服务许可证",
                "普通",
                "《人力资源市场暂行条例》第十八条",
                5,
                "苏宁玄人服",
            ),
        ],
        check_basis: "《劳动保障监察条例》第十五条",
        levies: &[],
    },
    Unit {
        code: "113201029935181903",
        name: "南京市玄武区文化和旅游局",
        short: "WLJ",
        abbr: "文旅",
        industries: &[
            "文化传媒",
            "网络科技",
            "娱乐",
            "国际旅行社",
            "演艺",
            "图书发行",
        ],
        shops: &["网吧", "书店", "KTV", "台球室", "剧本娱乐店"],
        org_share: 0.04,
        weight: 5,
        penalties: &[
            case(
                "接纳未成年人进入营业性娱乐场所",
                "允许未成年人进入营业性娱乐场所",
                "《娱乐场所管理条例》",
                "第五十条",
                &["警告、罚款", "责令停产停业、罚款"],
                (5_000, 20_000),
                "",
            ),
            case(
                "擅自从事互联网上网服务经营活动",
                "未取得网络文化经营许可证擅自从事互联网上网服务经营活动",
                "《互联网上网服务营业场所管理条例》",
                "第二十七条",
                &["没收违法所得、没收非法财物、罚款"],
                (10_000, 50_000),
                "",
            ),
            case(
                "未与旅游者签订旅游合同",
                "组织团队旅游未与旅游者签订书面旅游合同",
                "《中华人民共和国旅游法》",
                "第一百条",
                &["罚款", "责令停产停业、罚款"],
                (5_000, 50_000),
                "",
            ),
            case(
                "销售侵权盗版出版物",
                "销售侵权盗版图书",
                "《中华人民共和国著作权法》",
                "第五十三条",
                &["没收违法所得、没收非法财物、罚款", "警告"],
                (5_000, 100_000),
                "侵犯著作权罪",
            ),
        ],
        licenses: &[
            licence(
                "网络文化经营许可证",
                "普通",
                "《互联网文化管理暂行规定》第八条",
                3,
                "苏网文",
            ),
            licence(
                "娱乐经营许可证",
                "普通",
                "《娱乐场所管理条例》第九条",
                2,
                "320102YL",
            ),
            licence(
                "旅行社业务经营许可证",
                "普通",
                "《旅行社条例》第六条",
                5,
                "L-JS-",
            ),
            licence(
                "出版物经营许可证",
                "普通",
                "《出版管理条例》第三十五条",
                5,
                "新出发玄零字第",
            ),
        ],
        check_basis: "《娱乐场所管理条例》第三十七条",
        levies: &[],
    },
    Unit {
        code: "113201029378657970",
        name: "南京市玄武区住房和城乡建设局",
        short: "ZJJ",
        abbr: "住建",
        industries: &[
            "建设工程",
            "建筑工程",
            "房地产开发",
            "房地产经纪",
            "装饰工程",
            "市政工程",
        ],
        shops: &["房产中介", "装饰材料经营部"],
        org_share: 0.0,
        weight: 7,
        penalties: &[
            case(
                "未取得施工许可证擅自施工",
                "未取得施工许可证擅自开工建设",
                "《建设工程质量管理条例》",
                "第五十七条",
                &["罚款"],
                (20_000, 300_000),
                "",
            ),
            case(
                "违反建设工程质量管理规定",
                "在施工中偷工减料，使用不合格的建筑材料",
                "《建设工程质量管理条例》",
                "第六十四条",
                &["罚款", "责令停产停业、罚款", "降低资质等级、罚款"],
                (50_000, 500_000),
                "工程重大安全事故罪",
            ),
            case(
                "房地产经纪机构未备案",
                "房地产经纪机构未按照规定办理备案",
                "《房地产经纪管理办法》",
                "第三十三条",
                &["罚款"],
                (1_000, 10_000),
                "",
            ),
            case(
                "施工扬尘污染",
                "施工工地未采取覆盖等有效防尘降尘措施",
                "《中华人民共和国大气污染防治法》",
                "第一百一十五条第一款",
                &["罚款"],
                (10_000, 100_000),
                "",
            ),
        ],
        licenses: &[
            licence(
                "建筑工程施工许可证",
                "普通",
                "《中华人民共和国建筑法》第七条",
                3,
                "320102",
            ),
            licence(
                "商品房预售许可证",
                "普通",
                "《城市商品房预售管理办法》第六条",
                3,
                "宁房销第",
            ),
        ],
        check_basis: "《建设工程质量管理条例》第四十七条",
        levies: &[(
            "城市基础设施配套费",
            "《南京市城市基础设施配套费征收管理办法》第六条",
        )],
    },
    Unit {
        code: "11320102543231948H",
        name: "南京市玄武区教育局",
        short: "JYJ",
        abbr: "教育",
        industries: &["教育科技", "教育咨询", "文化艺术培训", "体育发展"],
        shops: &["托管中心", "书画工作室"],
        org_share: 0.4,
        weight: 3,
        penalties: &[
            case(
                "擅自举办校外培训机构",
                "未经审批擅自开展面向中小学生的学科类校外培训",
                "《中华人民共和国民办教育促进法》",
                "第六十四条",
                &["没收违法所得、罚款", "罚款"],
                (10_000, 100_000),
                "",
            ),
            case(
                "超范围收取培训费用",
                "一次性收取超过三个月的培训费用",
                "《校外培训行政处罚暂行办法》",
                "第十九条",
                &["警告", "警告、罚款"],
                (5_000, 30_000),
                "",
            ),
            case(
                "以预收费名义非法集资",
                "以预收培训费名义向学员家长吸收资金",
                "《校外培训行政处罚暂行办法》",
                "第十八条",
                &["没收违法所得、罚款"],
                (20_000, 100_000),
                "非法吸收公众存款罪",
            ),
        ],
        licenses: &[licence(
            "民办学校办学许可证",
            "普通",
            "《中华人民共和国民办教育促进法》第十八条",
            5,
            "教民1320102",
        )],
        check_basis: "《校外培训行政处罚暂行办法》第三条",
        levies: &[],
    },
    Unit {
        code: "113201027574911867",
        name: "南京市玄武区民政局",
        short: "MZJ",
        abbr: "民政",
        industries: &["养老服务", "殡葬服务", "社会工作服务", "婚庆服务"],
        shops: &["寿衣店", "养老服务站"],
        org_share: 0.6,
        weight: 3,
        penalties: &[
            case(
                "社会组织未按规定接受年度检查",
                "未按照规定接受年度检查",
                "《社会团体登记管理条例》",
                "第三十条第一款第五项",
                &["警告"],
                (1_000, 5_000),
                "",
            ),
            case(
                "未依法备案擅自开展养老服务",
                "未依法办理备案擅自开展养老服务",
                "《养老机构管理办法》",
                "第四十六条",
                &["警告", "警告、罚款"],
                (3_000, 30_000),
                "",
            ),
            case(
                "违法销售超规格殡葬用品",
                "销售超规格的骨灰盒等殡葬用品",
                "《殡葬管理条例》",
                "第二十二条",
                &["没收非法财物、罚款"],
                (1_000, 20_000),
                "",
            ),
            case(
                "养老机构非法集资",
                "以收取会员费、预付养老费名义向老年人吸收资金",
                "《养老机构管理办法》",
                "第四十六条",
                &["罚款"],
                (10_000, 30_000),
                "非法吸收公众存款罪",
            ),
        ],
        licenses: &[
            licence(
                "社会团体法人登记证书",
                "登记",
                "《社会团体登记管理条例》第十一条",
                5,
                "玄社证字第",
            ),
            licence(
                "民办非企业单位登记证书",
                "登记",
                "《民办非企业单位登记管理暂行条例》第十二条",
                5,
                "玄民证字第",
            ),
        ],
        check_basis: "《养老机构管理办法》第三十九条",
        levies: &[],
    },
    Unit {
        code: "113201022527601892",
        name: "南京市玄武区水务局",
        short: "SWJ",
        abbr: "水务",
        industries: &["餐饮管理", "洗车服务", "建设工程", "酒店管理", "物业管理"],
        shops: &["洗车店", "餐馆", "洗衣店"],
        org_share: 0.0,
        weight: 5,
        penalties: &[
            case(
                "未取得排水许可排放污水",
                "未取得污水排入排水管网许可证向城镇排水设施排放污水",
                "《城镇排水与污水处理条例》",
                "第五十条第一款",
                &["罚款", "警告、罚款"],
                (5_000, 50_000),
                "",
            ),
            case(
                "擅自占用河道管理范围",
                "在河道管理范围内擅自堆放物料",
                "《中华人民共和国河道管理条例》",
                "第四十四条",
                &["警告", "罚款"],
                (1_000, 10_000),
                "",
            ),
            case(
                "向水体排放含油污水",
                "向河道排放未经处理的含油污水",
                "《中华人民共和国水污染防治法》",
                "第八十三条",
                &["罚款"],
                (100_000, 500_000),
                "污染环境罪",
            ),
        ],
        licenses: &[
            licence(
                "城镇污水排入排水管网许可证",
                "普通",
                "《城镇排水与污水处理条例》第二十一条",
                5,
                "苏宁玄排字",
            ),
            licence(
                "取水许可证",
                "普通",
                "《取水许可和水资源费征收管理条例》第二十三条",
                5,
                "取水（玄）字",
            ),
        ],
        check_basis: "《城镇排水与污水处理条例》第四十条",
        levies: &[
            ("污水处理费", "《城镇排水与污水处理条例》第三十二条"),
            ("水土保持补偿费", "《中华人民共和国水土保持法》第三十二条"),
        ],
    },
    Unit {
        code: "11320102555979711N",
        name: "南京市玄武区商务局",
        short: "SWB",
        abbr: "商务",
        industries: &[
            "商贸",
            "超市",
            "二手车经纪",
            "拍卖",
            "再生资源回收",
            "餐饮管理",
        ],
        shops: &["便利店", "美发店", "洗衣店", "废品收购站"],
        org_share: 0.02,
        weight: 3,
        penalties: &[
            case(
                "单用途商业预付卡未备案",
                "发行单用途商业预付卡未按照规定办理备案",
                "《单用途商业预付卡管理办法（试行）》",
                "第三十六条",
                &["罚款"],
                (10_000, 30_000),
                "",
            ),
            case(
                "收购废旧金属未如实登记",
                "收购生产性废旧金属未如实登记出售人身份信息",
                "《再生资源回收管理办法》",
                "第二十三条",
                &["罚款", "警告"],
                (1_000, 5_000),
                "掩饰、隐瞒犯罪所得罪",
            ),
            case(
                "二手车经营主体未备案",
                "二手车经销企业未按照规定办理备案",
                "《二手车流通管理办法》",
                "第三十二条",
                &["罚款"],
                (1_000, 30_000),
                "",
            ),
        ],
        licenses: &[
            licence(
                "拍卖经营批准证书",
                "特许",
                "《中华人民共和国拍卖法》第十一条",
                5,
                "苏商拍",
            ),
            licence(
                "成品油零售经营批准证书",
                "特许",
                "《成品油市场管理办法》第八条",
                5,
                "油零售证书第",
            ),
        ],
        check_basis: "《单用途商业预付卡管理办法（试行）》第三十条",
        levies: &[],
    },
    Unit {
        code: "11320102471049746T",
        name: "南京市玄武区消防救援大队",
        short: "XFD",
        abbr: "消",
        industries: &["酒店管理", "商业管理", "餐饮管理", "物业管理", "娱乐"],
        shops: &["小吃店", "宾馆", "网吧", "超市"],
        org_share: 0.02,
        weight: 10,
        penalties: &[
            case(
                "违反消防安全规定",
                "占用、堵塞、封闭疏散通道、安全出口",
                FIRE_LAW,
                "第六十条第一款第三项",
                &["罚款", "警告"],
                (5_000, 50_000),
                "",
            ),
            case(
                "消防设施未保持完好有效",
                "消防设施、器材未保持完好有效",
                FIRE_LAW,
                "第六十条第一款第一项",
                &["罚款"],
                (5_000, 50_000),
                "",
            ),
            case(
                "未经消防安全检查擅自投入使用",
                "公众聚集场所未经消防安全检查擅自投入使用、营业",
                FIRE_LAW,
                "第五十八条第一款第四项",
                &["责令停产停业、罚款"],
                (30_000, 300_000),
                "",
            ),
            case(
                "拒不改正火灾隐患",
                "经消防救援机构通知后拒不采取改正措施消除火灾隐患",
                FIRE_LAW,
                "第六十条第一款第七项",
                &["罚款"],
                (5_000, 50_000),
                "消防责任事故罪",
            ),
        ],
        licenses: &[licence(
            "公众聚集场所投入使用、营业前消防安全检查合格证",
            "普通",
            "《中华人民共和国消防法》第十五条",
            3,
            "玄消安检字",
        )],
        check_basis: "《消防监督检查规定》第六条",
        levies: &[],
    },
];

/// Units of the neighbouring district, for rows of a unit the adapter does not cover:
/// (USCC, name, case-id short code, document prefix).
const FOREIGN_UNITS: [(&str, &str, &str, &str); 2] = [
    (
        "113201044660129730",
        "南京市秦淮区市场监督管理局",
        "QH-SJJ",
        "秦淮市监",
    ),
    (
        "11320104013546728M",
        "南京市秦淮区城市管理局",
        "QH-CGJ",
        "秦淮城管",
    ),
];

/// The organ that receives transferred cases.
const RECEIVING_ORGANS: [&str; 2] = ["南京市公安局玄武分局", "南京市玄武区人民检察院"];

/// The kind of enforcement action of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Penalty,
    Licensing,
    Inspection,
    Compulsion,
    Levy,
    Other,
}

impl Action {
    /// The adapter's code value (办件类型).
    fn label(self) -> &'static str {
        match self {
            Action::Penalty => "行政处罚",
            Action::Licensing => "行政许可",
            Action::Inspection => "行政检查",
            Action::Compulsion => "行政强制",
            Action::Levy => "行政征收",
            Action::Other => "其他",
        }
    }

    /// Index into the document-number counters.
    fn doc_index(self) -> usize {
        self as usize
    }

    /// The character of document numbers (`玄武市监罚〔2025〕12号`).
    fn doc_char(self) -> &'static str {
        match self {
            Action::Penalty => "罚",
            Action::Licensing => "许",
            Action::Inspection => "检",
            Action::Compulsion => "强",
            Action::Levy => "征",
            Action::Other => "办",
        }
    }
}

/// Index of the transfer-document counter.
const TRANSFER_DOC: usize = 6;

/// The kind of party of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartyKind {
    Natural,
    Legal,
    Individual,
    Org,
}

impl PartyKind {
    /// The adapter's code value (当事人类型).
    fn label(self) -> &'static str {
        match self {
            PartyKind::Natural => "自然人",
            PartyKind::Legal => "法人",
            PartyKind::Individual => "个体工商户",
            PartyKind::Org => "其他组织",
        }
    }
}

/// One CSV row, by column.
#[derive(Default)]
struct Row {
    unit: usize,
    case_id: String,
    title: String,
    action: String,
    unit_name: String,
    unit_code: String,
    cause: String,
    party_kind: String,
    party_name: String,
    id_type: String,
    id_number: String,
    legal_rep: String,
    address: String,
    phone: String,
    facts: String,
    legal_basis: String,
    decision: String,
    decision_number: String,
    penalty_kinds: String,
    fine: String,
    confiscated: String,
    license_category: String,
    license_name: String,
    license_number: String,
    valid_from: String,
    valid_to: String,
    filed_on: String,
    decided_on: String,
    closed_on: String,
    major: String,
    legal_review: String,
    collective: String,
    suspected: String,
    transfer_status: String,
    transferred_on: String,
    receiving_organ: String,
    transfer_doc: String,
    charge: String,
    status: String,
    disclosure: String,
}

impl Row {
    /// The cells in [`HEADER`] order.
    fn cells(&self) -> [&str; 39] {
        [
            &self.case_id,
            &self.title,
            &self.action,
            &self.unit_name,
            &self.unit_code,
            &self.cause,
            &self.party_kind,
            &self.party_name,
            &self.id_type,
            &self.id_number,
            &self.legal_rep,
            &self.address,
            &self.phone,
            &self.facts,
            &self.legal_basis,
            &self.decision,
            &self.decision_number,
            &self.penalty_kinds,
            &self.fine,
            &self.confiscated,
            &self.license_category,
            &self.license_name,
            &self.license_number,
            &self.valid_from,
            &self.valid_to,
            &self.filed_on,
            &self.decided_on,
            &self.closed_on,
            &self.major,
            &self.legal_review,
            &self.collective,
            &self.suspected,
            &self.transfer_status,
            &self.transferred_on,
            &self.receiving_organ,
            &self.transfer_doc,
            &self.charge,
            &self.status,
            &self.disclosure,
        ]
    }
}

/// What a bad row needs from the generated row before its defect is applied.
#[derive(Default)]
struct Plan {
    action: Option<Action>,
    party: Option<PartyKind>,
    unit: Option<usize>,
    case_id: Option<String>,
    needs_fine: bool,
}

/// A generated party.
struct Party {
    kind: PartyKind,
    name: String,
    id_number: String,
    rep: String,
    address: String,
    phone: String,
}

/// Generator state: the random source and the counters that keep ids unique.
struct Generator {
    rng: ChaCha8Rng,
    /// Case sequence per unit and year.
    case_seq: [[u32; 3]; 12],
    /// Document sequence per unit, document kind and year.
    doc_seq: [[[u32; 3]; 7]; 12],
    foreign_seq: u32,
    keys: KeyRing<(usize, String)>,
}

/// Index of a year 2024..=2026 in the counters.
fn year_index(year: i32) -> usize {
    (year - 2024).clamp(0, 2) as usize
}

fn yes_no(b: bool) -> String {
    if b { "是" } else { "否" }.to_string()
}

impl Generator {
    fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(seed),
            case_seq: [[0; 3]; 12],
            doc_seq: [[[0; 3]; 7]; 12],
            foreign_seq: 0,
            keys: KeyRing::new(),
        }
    }

    fn random_action(&mut self) -> Action {
        match self.rng.gen_range(0..100) {
            0..40 => Action::Penalty,
            40..65 => Action::Licensing,
            65..80 => Action::Inspection,
            80..88 => Action::Compulsion,
            88..95 => Action::Levy,
            _ => Action::Other,
        }
    }

    fn random_unit(&mut self, action: Action) -> usize {
        if action == Action::Levy {
            let levying: Vec<usize> = (0..UNITS.len())
                .filter(|&i| !UNITS[i].levies.is_empty())
                .collect();
            return *pick(&mut self.rng, &levying);
        }
        let total: u32 = UNITS.iter().map(|u| u.weight).sum();
        let mut x = self.rng.gen_range(0..total);
        for (i, unit) in UNITS.iter().enumerate() {
            if x < unit.weight {
                return i;
            }
            x -= unit.weight;
        }
        0
    }

    fn random_party_kind(&mut self, action: Action, unit: &Unit) -> PartyKind {
        if self.rng.gen_bool(unit.org_share) {
            return PartyKind::Org;
        }
        let natural = match action {
            Action::Penalty => 0.18,
            Action::Licensing | Action::Levy => 0.05,
            _ => 0.08,
        };
        let x: f64 = self.rng.r#gen();
        if x < natural {
            PartyKind::Natural
        } else if x < natural + 0.3 {
            PartyKind::Individual
        } else if x < 0.97 {
            PartyKind::Legal
        } else {
            PartyKind::Org
        }
    }

    fn party(&mut self, kind: PartyKind, unit: &Unit) -> Result<Party, SampleError> {
        let rng = &mut self.rng;
        let (name, id_number, rep) = match kind {
            PartyKind::Natural => {
                let male = rng.gen_bool(0.55);
                (
                    names::person(rng),
                    names::resident_id(rng, male)?,
                    String::new(),
                )
            }
            PartyKind::Legal => (
                names::company(rng, unit.industries),
                names::uscc(rng, "91")?,
                names::person(rng),
            ),
            PartyKind::Individual => (
                names::shop(rng, unit.shops),
                names::uscc(rng, "92")?,
                names::person(rng),
            ),
            PartyKind::Org => {
                let (name, prefix) = names::organisation(rng);
                (name, names::uscc(rng, prefix)?, names::person(rng))
            }
        };
        Ok(Party {
            kind,
            name,
            id_number,
            rep,
            address: names::address(rng),
            phone: names::phone(rng),
        })
    }

    /// (filed, decided, closed), in order, all within [`FIRST`]..=[`LAST`].
    fn dates(&mut self, action: Action) -> (Day, Day, Day) {
        let rng = &mut self.rng;
        let filed = calendar::between(rng, FIRST, LAST.plus(-150));
        let (decide, close) = match action {
            Action::Penalty => (rng.gen_range(15..=90), rng.gen_range(1..=45)),
            Action::Licensing => (rng.gen_range(1..=20), rng.gen_range(0..=3)),
            Action::Inspection => (rng.gen_range(0..=10), rng.gen_range(0..=15)),
            Action::Compulsion => (rng.gen_range(0..=3), rng.gen_range(30..=60)),
            Action::Levy => (rng.gen_range(0..=10), rng.gen_range(0..=30)),
            Action::Other => (rng.gen_range(0..=15), rng.gen_range(0..=10)),
        };
        let decided = filed.plus(decide);
        (filed, decided, decided.plus(close))
    }

    fn next_doc(&mut self, unit: usize, kind: usize, year: i32) -> u32 {
        let slot = &mut self.doc_seq[unit][kind][year_index(year)];
        *slot += 1;
        *slot
    }

    fn doc_number(&mut self, unit: usize, action: Action, year: i32) -> String {
        let n = self.next_doc(unit, action.doc_index(), year);
        format!(
            "玄武{}{}〔{year}〕{n}号",
            UNITS[unit].abbr,
            action.doc_char()
        )
    }

    /// The next row, valid or (as the picker decides) carrying one defect.
    fn next_row(&mut self, picker: &mut BadPicker) -> Result<Row, SampleError> {
        let bad = picker.pick(&mut self.rng, !self.keys.is_empty());
        let mut plan = Plan::default();
        let mut target_unit = false;
        let mut variant = 0;
        match bad {
            Some(BadKind::UsccCheck) => {
                target_unit = self.rng.gen_bool(0.3);
                if !target_unit {
                    plan.party = Some(*pick(
                        &mut self.rng,
                        &[
                            PartyKind::Legal,
                            PartyKind::Legal,
                            PartyKind::Individual,
                            PartyKind::Org,
                        ],
                    ));
                }
            }
            Some(BadKind::ResidentIdCheck) => plan.party = Some(PartyKind::Natural),
            Some(BadKind::DuplicateKey) => {
                if let Some((unit, case_id)) = self.keys.pick(&mut self.rng) {
                    plan.unit = Some(unit);
                    plan.case_id = Some(case_id);
                }
            }
            Some(BadKind::TooPrecise) => {
                plan.action = Some(Action::Penalty);
                plan.needs_fine = true;
            }
            Some(BadKind::ForeignUnit) => {
                variant = self.rng.gen_range(0..FOREIGN_UNITS.len());
                plan.unit = Some(variant);
            }
            Some(BadKind::UnknownCode) => {
                variant = self.rng.gen_range(0..3);
                if variant == 2 {
                    plan.action = Some(Action::Penalty);
                }
            }
            _ => {}
        }
        let mut row = self.row(plan)?;
        let rng = &mut self.rng;
        match bad {
            None => self.keys.push((row.unit, row.case_id.clone())),
            Some(BadKind::UsccCheck) => {
                if target_unit {
                    row.unit_code = names::corrupt_uscc(rng, &row.unit_code);
                } else {
                    row.id_number = names::corrupt_uscc(rng, &row.id_number);
                }
            }
            Some(BadKind::ResidentIdCheck) => {
                row.id_number = names::corrupt_resident_id(rng, &row.id_number);
            }
            Some(BadKind::ImpossibleDate) => {
                let year = row
                    .filed_on
                    .get(..4)
                    .and_then(|y| y.parse().ok())
                    .unwrap_or(2025);
                let date = calendar::impossible(rng, year, "-");
                match rng.gen_range(0..3) {
                    0 => row.filed_on = date,
                    1 => row.decided_on = date,
                    _ => row.closed_on = date,
                }
            }
            Some(BadKind::MissingValue) => {
                if rng.gen_bool(0.5) {
                    row.party_name.clear();
                } else {
                    row.case_id.clear();
                }
            }
            Some(BadKind::UnknownCode) => match variant {
                0 => row.action = "行政奖励".into(),
                1 => row.party_kind = "事业单位".into(),
                _ => row.penalty_kinds.push_str("、责令改正"),
            },
            Some(BadKind::DuplicateKey) => {}
            Some(BadKind::TooPrecise) => row.fine = names::too_precise_yuan(rng),
            Some(BadKind::ForeignUnit) => {
                let (code, name, short, doc) = FOREIGN_UNITS[variant];
                self.foreign_seq += 1;
                let year = row.filed_on.get(..4).unwrap_or("2025");
                row.case_id = format!("{short}-{year}-{:06}", self.foreign_seq);
                row.unit_code = code.into();
                row.unit_name = name.into();
                row.decision_number =
                    row.decision_number
                        .replacen(&format!("玄武{}", UNITS[variant].abbr), doc, 1);
            }
        }
        Ok(row)
    }

    /// A valid row shaped by `plan`.
    fn row(&mut self, plan: Plan) -> Result<Row, SampleError> {
        let action = match plan.action {
            Some(a) => a,
            None => self.random_action(),
        };
        let u = match plan.unit {
            Some(u) => u,
            None => self.random_unit(action),
        };
        let unit = &UNITS[u];
        // A forced unit (duplicate or foreign rows) may not levy anything.
        let action = if action == Action::Levy && unit.levies.is_empty() {
            Action::Inspection
        } else {
            action
        };
        let kind = match plan.party {
            Some(k) => k,
            None => self.random_party_kind(action, unit),
        };
        let party = self.party(kind, unit)?;
        let (filed, decided, closed) = self.dates(action);
        let year = filed.year();
        let case_id = match plan.case_id {
            Some(id) => id,
            None => {
                let slot = &mut self.case_seq[u][year_index(year)];
                *slot += 1;
                format!("XW-{}-{year}-{:06}", unit.short, *slot)
            }
        };
        let natural = party.kind == PartyKind::Natural;
        let mut row = Row {
            unit: u,
            case_id,
            action: action.label().into(),
            unit_name: unit.name.into(),
            unit_code: unit.code.into(),
            party_kind: party.kind.label().into(),
            id_type: if natural {
                "身份证"
            } else {
                "统一社会信用代码"
            }
            .into(),
            id_number: party.id_number,
            legal_rep: party.rep,
            address: party.address,
            phone: party.phone,
            filed_on: filed.format("-"),
            decided_on: decided.format("-"),
            closed_on: closed.format("-"),
            major: yes_no(false),
            legal_review: yes_no(false),
            collective: yes_no(false),
            suspected: yes_no(false),
            transfer_status: "未移送".into(),
            party_name: party.name,
            ..Row::default()
        };
        match action {
            Action::Penalty => self.penalty(&mut row, u, filed, decided, closed, plan.needs_fine),
            Action::Licensing => self.licensing(&mut row, u, decided),
            Action::Inspection => self.inspection(&mut row, u),
            Action::Compulsion => self.compulsion(&mut row, u, decided),
            Action::Levy => self.levy(&mut row, u, decided),
            Action::Other => self.other(&mut row, u),
        }
        let rng = &mut self.rng;
        row.status = match rng.gen_range(0..100) {
            0..2 => "已撤销",
            2..6 => "已更正",
            _ => "正常",
        }
        .into();
        let restricted = match (natural, action) {
            (true, _) => 0.35,
            (false, Action::Penalty | Action::Licensing) => 0.06,
            _ => 0.2,
        };
        row.disclosure = if rng.gen_bool(restricted) {
            "不公开"
        } else {
            "公开"
        }
        .into();
        Ok(row)
    }

    fn penalty(
        &mut self,
        row: &mut Row,
        u: usize,
        filed: Day,
        decided: Day,
        closed: Day,
        needs_fine: bool,
    ) {
        let unit = &UNITS[u];
        let rng = &mut self.rng;
        let has_fine = |c: &PenaltyCase| c.kinds.iter().any(|k| k.contains("罚款"));
        let suspect = rng.gen_bool(0.03);
        let mut cases: Vec<&PenaltyCase> = unit
            .penalties
            .iter()
            .filter(|c| (!suspect || !c.crime.is_empty()) && (!needs_fine || has_fine(c)))
            .collect();
        if cases.is_empty() {
            cases = unit
                .penalties
                .iter()
                .filter(|c| !needs_fine || has_fine(c))
                .collect();
        }
        if cases.is_empty() {
            cases = unit.penalties.iter().collect();
        }
        let case = *pick(rng, &cases);
        let suspect = suspect && !case.crime.is_empty();
        let combos: Vec<&str> = case
            .kinds
            .iter()
            .copied()
            .filter(|k| !needs_fine || k.contains("罚款"))
            .collect();
        let combo = if combos.is_empty() {
            "罚款"
        } else {
            *pick(rng, &combos)
        };

        let mut parts = Vec::new();
        let mut fine = 0;
        let mut confiscated = 0;
        for kind in combo.split('、') {
            match kind {
                "警告" => parts.push("给予警告".to_string()),
                "通报批评" => parts.push("给予通报批评".to_string()),
                "罚款" => {
                    fine = names::fine_yuan(rng, case.fine.0, case.fine.1);
                    parts.push(format!("罚款人民币{fine}元"));
                }
                "没收违法所得" => {
                    confiscated = rng.gen_range(2_000..=5_000_000u64);
                    parts.push(format!(
                        "没收违法所得人民币{}元",
                        names::yuan_2dp(confiscated)
                    ));
                }
                "没收非法财物" => {
                    parts.push(format!("没收涉案物品{}件", rng.gen_range(3..=600)))
                }
                "责令停产停业" => {
                    parts.push(format!("责令停业整顿{}日", pick(rng, &[7, 15, 30])))
                }
                "降低资质等级" => parts.push("降低资质等级".to_string()),
                "限制开展生产经营活动" => {
                    parts.push(format!("限制开展生产经营活动{}个月", rng.gen_range(1..=6)));
                }
                other => parts.push(other.to_string()),
            }
        }
        let basis = format!("{}{}", case.law, case.article);
        let act_day = calendar::between(rng, filed.plus(-60), filed);
        let mut facts = format!("经查，当事人于{}{}", act_day.chinese(), case.conduct);
        if confiscated > 0 {
            facts.push_str(&format!("，违法所得{}元", names::yuan_2dp(confiscated)));
        }
        facts.push_str(&format!("。上述行为违反了{}的有关规定。", case.law));

        row.title = format!("{}{}案", row.party_name, case.cause);
        row.cause = case.cause.into();
        row.facts = facts;
        row.decision = format!("依据{basis}，决定对当事人{}。", parts.join("，"));
        row.legal_basis = basis;
        row.penalty_kinds = combo.into();
        if fine > 0 {
            row.fine = if rng.gen_bool(0.3) {
                format!("{fine}.00")
            } else {
                fine.to_string()
            };
        }
        if confiscated > 0 {
            row.confiscated = names::yuan_2dp(confiscated);
        }
        let severe = ["吊销许可证件", "责令停产停业", "降低资质等级", "责令关闭"];
        let major = fine >= 100_000 || suspect || severe.iter().any(|k| combo.contains(k));
        let reviewed = major || fine >= 10_000 || rng.gen_bool(0.5);
        row.major = yes_no(major);
        row.legal_review = yes_no(reviewed);
        row.collective = yes_no(major);
        if suspect {
            let status = match rng.gen_range(0..100) {
                0..30 => "已移送",
                30..50 => "已受理",
                50..70 => "已立案",
                70..80 => "不予立案",
                80..85 => "已退回",
                _ => "建议移送",
            };
            row.suspected = yes_no(true);
            row.transfer_status = status.into();
            row.charge = case.crime.into();
            if status != "建议移送" {
                let on = calendar::between(rng, filed, closed);
                row.transferred_on = on.format("-");
                row.receiving_organ = (*pick(rng, &RECEIVING_ORGANS)).into();
                let n = self.next_doc(u, TRANSFER_DOC, on.year());
                row.transfer_doc = format!("玄武{}移〔{}〕{n}号", unit.abbr, on.year());
            }
        }
        row.decision_number = self.doc_number(u, Action::Penalty, decided.year());
    }

    fn licensing(&mut self, row: &mut Row, u: usize, decided: Day) {
        let unit = &UNITS[u];
        let rng = &mut self.rng;
        let item = pick(rng, unit.licenses);
        let how = *pick(rng, &["新办", "新办", "新办", "变更", "延续"]);
        let valid_to = decided.years_later_minus_one(item.years);
        row.title = format!("{}申请{}（{how}）", row.party_name, item.cert);
        row.cause = format!("申请{}{how}", item.cert);
        row.legal_basis = item.basis.into();
        row.decision = match how {
            "变更" => format!("准予变更，换发{}", item.cert),
            "延续" => format!("准予延续，{}有效期至{}", item.cert, valid_to.chinese()),
            _ => format!("准予行政许可，核发{}", item.cert),
        };
        row.license_category = item.category.into();
        row.license_name = item.cert.into();
        row.valid_from = decided.format("-");
        row.valid_to = valid_to.format("-");
        let year = decided.year();
        let n = self.next_doc(u, Action::Licensing.doc_index(), year);
        row.license_number = format!("{}{year}{n:05}", item.prefix);
        row.decision_number = format!("玄武{}许〔{year}〕{n}号", unit.abbr);
    }

    fn inspection(&mut self, row: &mut Row, u: usize) {
        let unit = &UNITS[u];
        let rng = &mut self.rng;
        let kind = *pick(
            rng,
            &[
                "日常监督检查",
                "日常监督检查",
                "双随机抽查",
                "专项检查",
                "投诉举报核查",
            ],
        );
        row.title = format!("对{}的{kind}", row.party_name);
        row.cause = kind.into();
        row.legal_basis = unit.check_basis.into();
        let (decision, facts) = match rng.gen_range(0..10) {
            0..6 => ("未发现违法行为", ""),
            6..8 => ("发现问题，已当场责令改正", "检查发现部分台账记录不完整"),
            8 => ("发现问题，已下达责令限期整改通知书", "检查发现存在安全隐患"),
            _ => (
                "发现涉嫌违法行为，已移交立案调查",
                "检查发现涉嫌违法经营行为",
            ),
        };
        row.decision = decision.into();
        row.facts = facts.into();
    }

    fn compulsion(&mut self, row: &mut Row, u: usize, decided: Day) {
        let unit = &UNITS[u];
        let rng = &mut self.rng;
        let case = pick(rng, unit.penalties);
        let how = *pick(rng, &["查封", "扣押"]);
        row.title = format!("对{}涉嫌{}采取{how}措施", row.party_name, case.cause);
        row.cause = format!("涉嫌{}", case.cause);
        row.facts = format!(
            "执法人员现场检查发现当事人涉嫌{}，涉案物品可能灭失或者以后难以取得。",
            case.conduct
        );
        row.legal_basis = format!(
            "《中华人民共和国行政强制法》第二十二条、{}{}",
            case.law, case.article
        );
        row.decision = format!(
            "对当事人涉案物品{}件予以{how}，期限三十日。",
            rng.gen_range(2..=400)
        );
        row.legal_review = yes_no(rng.gen_bool(0.5));
        row.decision_number = self.doc_number(u, Action::Compulsion, decided.year());
    }

    fn levy(&mut self, row: &mut Row, u: usize, decided: Day) {
        let unit = &UNITS[u];
        let rng = &mut self.rng;
        let (item, basis) = *pick(rng, unit.levies);
        let amount = rng.gen_range(10_000..=20_000_000u64);
        row.title = format!("{}{item}征收", row.party_name);
        row.cause = format!("征收{item}");
        row.legal_basis = basis.into();
        row.decision = format!("征收{item}人民币{}元", names::yuan_2dp(amount));
        row.decision_number = self.doc_number(u, Action::Levy, decided.year());
    }

    fn other(&mut self, row: &mut Row, u: usize) {
        let unit = &UNITS[u];
        let rng = &mut self.rng;
        let (item, decision) = *pick(
            rng,
            &[
                ("行政指导", "已向当事人送达行政指导书"),
                ("行政约谈", "已约谈当事人并督促整改"),
                ("信用修复", "准予信用修复"),
                ("投诉举报处理", "已调查处理并答复投诉举报人"),
            ],
        );
        row.title = format!("{}{item}", row.party_name);
        row.cause = item.into();
        row.legal_basis = unit.check_basis.into();
        row.decision = decision.into();
    }
}

/// CSV lines encoded to GB18030 one at a time.
struct Gb18030Csv<W: Write> {
    out: W,
    chars: Gb18030Chars,
    line: String,
    bytes: Vec<u8>,
}

impl<W: Write> Gb18030Csv<W> {
    fn new(out: W) -> Self {
        Self {
            out,
            chars: Gb18030Chars::new(),
            line: String::new(),
            bytes: Vec::new(),
        }
    }

    /// Writes one record, quoting fields that need it, ending with CRLF.
    fn record(&mut self, fields: &[&str]) -> std::io::Result<()> {
        self.line.clear();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            if field.contains([',', '"', '\r', '\n']) {
                self.line.push('"');
                self.line.push_str(&field.replace('"', "\"\""));
                self.line.push('"');
            } else {
                self.line.push_str(field);
            }
        }
        self.line.push_str("\r\n");
        self.bytes.clear();
        self.chars.encode(&self.line, &mut self.bytes);
        self.out.write_all(&self.bytes)
    }
}

/// GB18030 encoding with a per-character cache. encoding_rs (built without its
/// `fast-gb-hanzi-encode` feature) finds each ideograph's bytes by searching its index, which made
/// encoding most of the writer's run time; GB18030 is stateless, so the bytes encoding_rs gives for
/// a character can be kept and reused. Sample text uses a few hundred distinct characters.
struct Gb18030Chars {
    /// Basic Multilingual Plane: (byte count, bytes); a count of 0 means not encoded yet.
    bmp: Vec<(u8, [u8; 4])>,
}

impl Gb18030Chars {
    fn new() -> Self {
        Self {
            bmp: vec![(0, [0; 4]); 0x1_0000],
        }
    }

    /// Appends the GB18030 bytes of `text` to `out`.
    fn encode(&mut self, text: &str, out: &mut Vec<u8>) {
        for c in text.chars() {
            if c.is_ascii() {
                out.push(c as u8);
                continue;
            }
            let (n, bytes) = match self.bmp.get_mut(c as usize) {
                Some(slot) => {
                    if slot.0 == 0 {
                        *slot = Self::encode_char(c);
                    }
                    *slot
                }
                None => Self::encode_char(c),
            };
            out.extend_from_slice(&bytes[..usize::from(n)]);
        }
    }

    /// One character through encoding_rs (every Unicode character has a GB18030 encoding of
    /// two or four bytes).
    fn encode_char(c: char) -> (u8, [u8; 4]) {
        let mut utf8 = [0; 4];
        let (encoded, _, _) = GB18030.encode(c.encode_utf8(&mut utf8));
        let mut bytes = [0; 4];
        let n = encoded.len().min(4);
        bytes[..n].copy_from_slice(&encoded[..n]);
        (n as u8, bytes)
    }
}

/// Writes a sunshine CSV of `rows` rows (bad ones included) and returns the per-kind bad counts.
pub(crate) fn write(
    path: &Path,
    rows: u64,
    bad_fraction: f64,
    seed: u64,
) -> Result<(SampleFile, BadCounts), SampleError> {
    super::check_fraction(bad_fraction)?;
    super::create_parent(path)?;
    let file = File::create(path).map_err(SampleError::io(path))?;
    let mut csv = Gb18030Csv::new(BufWriter::with_capacity(1 << 20, file));
    csv.record(&HEADER).map_err(SampleError::io(path))?;
    let mut generator = Generator::new(seed);
    let mut picker = BadPicker::new(&BadKind::ALL, bad_fraction);
    for _ in 0..rows {
        let row = generator.next_row(&mut picker)?;
        csv.record(&row.cells()).map_err(SampleError::io(path))?;
    }
    csv.out.flush().map_err(SampleError::io(path))?;
    let file = SampleFile {
        adapter: SUNSHINE.into(),
        path: path.to_path_buf(),
        rows,
        bad_rows: picker.total(),
    };
    Ok((file, picker.counts()))
}

/// Writes the district power-sunshine system's export: a GB18030 CSV whose header holds every
/// column of the `sunshine` adapter, with `rows` rows of which about `bad_fraction` carry one
/// deliberate defect each. Streams row by row; the same `seed` gives the same bytes.
pub fn write_sunshine_csv(
    path: &Path,
    rows: u64,
    bad_fraction: f64,
    seed: u64,
) -> Result<SampleFile, SampleError> {
    write(path, rows, bad_fraction, seed).map(|(file, _)| file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Fen, MoneyUnit, ResidentId, Uscc};
    use std::collections::{BTreeSet, HashMap, HashSet};

    const ADAPTER: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/adapters/sunshine/adapter.toml"
    );

    fn adapter() -> toml::Table {
        toml::from_str(&std::fs::read_to_string(ADAPTER).unwrap()).unwrap()
    }

    /// Reads a written file back: GB18030 decoded, parsed as CSV into maps by header.
    fn read_back(path: &Path) -> (Vec<String>, Vec<HashMap<String, String>>) {
        let bytes = std::fs::read(path).unwrap();
        let (text, _, had_errors) = GB18030.decode(&bytes);
        assert!(!had_errors);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let rows = reader
            .records()
            .map(|r| {
                let r = r.unwrap();
                assert_eq!(r.len(), header.len());
                header
                    .iter()
                    .cloned()
                    .zip(r.iter().map(String::from))
                    .collect()
            })
            .collect();
        (header, rows)
    }

    #[test]
    fn cached_encoding_matches_encoding_rs() {
        let text = "办件编号,南京市玄武区市场监督管理局,XW-SJJ-2025-000123,¥€😀,《》〔〕（）\r\n";
        let mut chars = Gb18030Chars::new();
        for _ in 0..2 {
            let mut out = Vec::new();
            chars.encode(text, &mut out);
            assert_eq!(out, GB18030.encode(text).0.as_ref());
        }
    }

    #[test]
    fn header_is_the_adapters_from_columns() {
        let fields = adapter()["fields"].as_table().unwrap().clone();
        let from: BTreeSet<String> = fields
            .values()
            .filter_map(|f| f.get("from")?.as_str().map(String::from))
            .collect();
        let header: BTreeSet<String> = HEADER.iter().map(|s| s.to_string()).collect();
        assert_eq!(header.len(), HEADER.len(), "duplicate header column");
        assert_eq!(header, from);
    }

    #[test]
    fn units_match_the_adapter() {
        let units = adapter()["units"].as_array().unwrap().clone();
        assert_eq!(units.len(), UNITS.len());
        for (u, t) in UNITS.iter().zip(&units) {
            assert_eq!(u.code, t["code"].as_str().unwrap());
            assert_eq!(u.name, t["name"].as_str().unwrap());
            assert!(Uscc::parse(u.code).is_ok());
            assert!(
                u.penalties
                    .iter()
                    .any(|c| c.kinds.iter().any(|k| k.contains("罚款"))),
                "{}",
                u.name
            );
            assert!(!u.licenses.is_empty());
        }
        let codes: HashSet<&str> = UNITS.iter().map(|u| u.code).collect();
        for (code, ..) in FOREIGN_UNITS {
            assert!(Uscc::parse(code).is_ok());
            assert!(!codes.contains(code));
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let a = write_sunshine_csv(&dir.path().join("a.csv"), 300, 0.1, 5).unwrap();
        let b = write_sunshine_csv(&dir.path().join("b.csv"), 300, 0.1, 5).unwrap();
        let c = write_sunshine_csv(&dir.path().join("c.csv"), 300, 0.1, 6).unwrap();
        let bytes = std::fs::read(&a.path).unwrap();
        assert_eq!(bytes, std::fs::read(&b.path).unwrap());
        assert_ne!(bytes, std::fs::read(&c.path).unwrap());
        assert_eq!((a.rows, a.adapter.as_str()), (300, "sunshine"));
        assert_eq!(a.bad_rows, b.bad_rows);
    }

    /// Every row of a bad_fraction = 0 file satisfies the ingest rules listed for valid rows.
    #[test]
    fn valid_rows_satisfy_the_validation_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/sunshine-export.csv");
        let file = write_sunshine_csv(&path, 3_000, 0.0, 11).unwrap();
        assert_eq!((file.rows, file.bad_rows), (3_000, 0));
        let (header, rows) = read_back(&path);
        assert_eq!(header, HEADER);
        assert_eq!(rows.len(), 3_000);

        let fields = adapter()["fields"].as_table().unwrap().clone();
        let codes_of = |column: &str| -> HashSet<String> {
            let field = fields
                .values()
                .find(|f| f.get("from").and_then(|v| v.as_str()) == Some(column))
                .unwrap();
            field["codes"].as_table().unwrap().keys().cloned().collect()
        };
        let units: HashMap<&str, &str> = UNITS.iter().map(|u| (u.code, u.name)).collect();
        let date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let limit = date("2026-11-01");
        let mut keys = HashSet::new();
        let mut actions: HashMap<String, usize> = HashMap::new();
        let mut suspected = 0;
        let mut statuses = HashSet::new();
        for r in &rows {
            for column in [
                "办件类型",
                "当事人类型",
                "证件类型",
                "许可类别",
                "涉嫌犯罪",
                "移送状态",
                "办件状态",
                "公开属性",
            ] {
                if !r[column].is_empty() {
                    assert!(
                        codes_of(column).contains(&r[column]),
                        "{column} = {}",
                        r[column]
                    );
                }
            }
            for kind in r["处罚种类"].split('、').filter(|k| !k.is_empty()) {
                assert!(codes_of("处罚种类").contains(kind), "{kind}");
            }
            assert_eq!(
                units.get(r["执法主体统一社会信用代码"].as_str()),
                Some(&r["执法主体名称"].as_str())
            );
            let id = &r["办件编号"];
            assert!(
                !id.is_empty()
                    && id.len() <= 64
                    && !id.contains('/')
                    && !id.chars().any(char::is_control)
            );
            assert!(
                keys.insert((r["执法主体统一社会信用代码"].clone(), id.clone())),
                "duplicate {id}"
            );
            assert!(!r["办件名称"].is_empty() && !r["当事人名称"].is_empty());
            match r["当事人类型"].as_str() {
                "自然人" => {
                    assert_eq!(r["证件类型"], "身份证");
                    ResidentId::parse(&r["证件号码"]).unwrap();
                }
                _ => {
                    assert_eq!(r["证件类型"], "统一社会信用代码");
                    Uscc::parse(&r["证件号码"]).unwrap();
                }
            }
            let (filed, decided, closed) = (
                date(&r["立案日期"]),
                date(&r["决定日期"]),
                date(&r["结案日期"]),
            );
            assert!(
                filed <= decided && decided <= closed && closed <= limit,
                "{id}"
            );
            *actions.entry(r["办件类型"].clone()).or_default() += 1;
            let penalty = r["办件类型"] == "行政处罚";
            let licensing = r["办件类型"] == "行政许可";
            if penalty {
                assert!(!r["处罚种类"].is_empty());
                if r["处罚种类"].contains("罚款") {
                    assert!(
                        Fen::parse(&r["罚款金额（元）"], MoneyUnit::Yuan)
                            .unwrap()
                            .get()
                            > 0
                    );
                }
                if !r["没收金额（元）"].is_empty() {
                    Fen::parse(&r["没收金额（元）"], MoneyUnit::Yuan).unwrap();
                }
            } else {
                for c in ["处罚种类", "罚款金额（元）", "没收金额（元）"] {
                    assert!(r[c].is_empty(), "{c} on {}", r["办件类型"]);
                }
            }
            if licensing {
                assert!(!r["许可证编号"].is_empty());
                assert!(date(&r["有效期自"]) <= date(&r["有效期至"]));
            } else {
                for c in [
                    "许可类别",
                    "许可证名称",
                    "许可证编号",
                    "有效期自",
                    "有效期至",
                ] {
                    assert!(r[c].is_empty(), "{c} on {}", r["办件类型"]);
                }
            }
            if r["移送状态"] != "未移送" {
                assert_eq!(r["涉嫌犯罪"], "是");
                assert!(!r["涉嫌罪名"].is_empty());
                statuses.insert(r["移送状态"].clone());
                if r["移送状态"] != "建议移送" {
                    assert!(!r["接收机关"].is_empty());
                    assert!(date(&r["移送日期"]) <= limit);
                }
            }
            if r["涉嫌犯罪"] == "是" {
                suspected += 1;
            }
        }
        let share = |a: &str| actions.get(a).copied().unwrap_or(0) as f64 / rows.len() as f64;
        assert!((0.35..0.45).contains(&share("行政处罚")), "{actions:?}");
        assert!((0.20..0.30).contains(&share("行政许可")), "{actions:?}");
        assert!(share("行政检查") > 0.1 && share("行政强制") > 0.05 && share("行政征收") > 0.04);
        assert!(share("其他") > 0.03, "{actions:?}");
        assert!(suspected >= 10, "{suspected} suspected crimes");
        assert!(statuses.len() >= 3, "{statuses:?}");
    }

    #[test]
    fn every_bad_kind_occurs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        let (file, counts) = write(&path, 200, 0.5, 21).unwrap();
        assert_eq!(file.rows, 200);
        assert!(counts.iter().all(|&c| c >= 1), "{counts:?}");
        assert_eq!(counts.iter().sum::<u64>(), file.bad_rows);
        assert!((60..=140).contains(&file.bad_rows), "{}", file.bad_rows);
        let (_, rows) = read_back(&path);
        assert_eq!(rows.len(), 200);
        // Bad rows are visible in the data: invalid identifiers, duplicated keys, unknown codes.
        let bad_ids = rows
            .iter()
            .filter(|r| match r["证件类型"].as_str() {
                "身份证" => ResidentId::parse(&r["证件号码"]).is_err(),
                _ => Uscc::parse(&r["证件号码"]).is_err(),
            })
            .count();
        assert!(bad_ids >= 1);
        let mut keys = HashSet::new();
        let duplicates = rows
            .iter()
            .filter(|r| {
                !keys.insert((r["执法主体统一社会信用代码"].clone(), r["办件编号"].clone()))
            })
            .count();
        assert!(duplicates >= 1);
        assert!(rows.iter().any(
            |r| Fen::parse(&r["罚款金额（元）"], MoneyUnit::Yuan).is_err()
                && !r["罚款金额（元）"].is_empty()
        ));
        assert!(rows.iter().any(|r| r["执法主体名称"].contains("秦淮区")));
    }

    #[test]
    #[ignore = "performance check; run with --release -- --ignored"]
    fn million_rows_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let start = std::time::Instant::now();
        let file = write_sunshine_csv(&dir.path().join("big.csv"), 1_000_000, 0.02, 1).unwrap();
        let took = start.elapsed();
        let size = std::fs::metadata(&file.path).unwrap().len();
        eprintln!("1,000,000 rows, {size} bytes in {took:?}");
        assert!(took.as_secs() < 30);
    }
}
