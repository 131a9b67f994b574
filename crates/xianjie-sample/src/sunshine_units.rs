//! The enforcement units of the `sunshine` adapter and what they do: the violations each one
//! punishes (cause, law and article, usual penalty kinds, fine range, the crime suspected when a
//! case is transferred), the licences it grants and the fees it levies. Data only.

/// A kind of violation a unit punishes.
pub(super) struct PenaltyCase {
    /// 案由.
    pub(super) cause: &'static str,
    /// What the party did, as a clause of the facts.
    pub(super) conduct: &'static str,
    /// The law (with book-title marks).
    pub(super) law: &'static str,
    /// The penalty article of that law.
    pub(super) article: &'static str,
    /// Usual combinations of penalty kinds, joined with 、.
    pub(super) kinds: &'static [&'static str],
    /// Fine range in yuan.
    pub(super) fine: (u64, u64),
    /// The crime suspected when the case is transferred; empty when none fits.
    pub(super) crime: &'static str,
}

/// A licence a unit grants.
pub(super) struct LicenseItem {
    /// 许可证名称.
    pub(super) cert: &'static str,
    /// 许可类别 (one of the adapter's codes).
    pub(super) category: &'static str,
    /// 法律依据.
    pub(super) basis: &'static str,
    /// Validity in years.
    pub(super) years: i32,
    /// Prefix of the licence number.
    pub(super) prefix: &'static str,
    /// Industries of the companies that hold it; none when companies do not.
    pub(super) industries: &'static [&'static str],
    /// Shop types of the individual businesses that hold it; none when they do not.
    /// A licence with neither is held by social organisations.
    pub(super) shops: &'static [&'static str],
}

/// One enforcement unit of the district, as listed in the adapter's `[[units]]`.
pub(super) struct Unit {
    /// Its USCC.
    pub(super) code: &'static str,
    /// Its name.
    pub(super) name: &'static str,
    /// Short code in case ids (`XW-SJJ-2025-000123`).
    pub(super) short: &'static str,
    /// Abbreviation in document numbers (`玄武市监罚〔2025〕12号`).
    pub(super) abbr: &'static str,
    /// Industries of the companies it deals with.
    pub(super) industries: &'static [&'static str],
    /// Shop types of the individual businesses it deals with.
    pub(super) shops: &'static [&'static str],
    /// Share of parties that are social organisations.
    pub(super) org_share: f64,
    /// Relative share of all cases.
    pub(super) weight: u32,
    /// The violations it punishes.
    pub(super) penalties: &'static [PenaltyCase],
    /// The licences it grants.
    pub(super) licenses: &'static [LicenseItem],
    /// Legal basis of inspections and other supervision.
    pub(super) check_basis: &'static str,
    /// Fees it levies, with their legal basis.
    pub(super) levies: &'static [(&'static str, &'static str)],
}

/// A [`PenaltyCase`], positionally.
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

/// A [`LicenseItem`], positionally.
const fn licence(
    cert: &'static str,
    category: &'static str,
    basis: &'static str,
    years: i32,
    prefix: &'static str,
    industries: &'static [&'static str],
    shops: &'static [&'static str],
) -> LicenseItem {
    LicenseItem {
        cert,
        category,
        basis,
        years,
        prefix,
        industries,
        shops,
    }
}

const FOOD_LAW: &str = "《中华人民共和国食品安全法》";
const FIRE_LAW: &str = "《中华人民共和国消防法》";
const SAFETY_LAW: &str = "《中华人民共和国安全生产法》";

/// The twelve units of the adapter, in its order.
pub(super) static UNITS: [Unit; 12] = [
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
                &["餐饮管理", "食品", "超市"],
                &["小吃店", "便利店", "餐馆", "副食品商行"],
            ),
            licence(
                "药品经营许可证",
                "普通",
                "《中华人民共和国药品管理法》第五十二条",
                5,
                "苏AA025",
                &["医药", "大药房连锁"],
                &["大药房"],
            ),
            licence(
                "特种设备使用登记证",
                "登记",
                "《中华人民共和国特种设备安全法》第三十三条",
                10,
                "梯11苏A",
                &["物业管理", "酒店管理", "商业管理"],
                &[],
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
                &["建筑工程", "渣土运输", "装饰工程"],
                &[],
            ),
            licence(
                "户外广告设置许可证",
                "普通",
                "《城市市容和环境卫生管理条例》第十一条",
                3,
                "玄户广",
                &["广告", "文化传媒", "餐饮管理"],
                &["广告店", "小吃店"],
            ),
            licence(
                "城市道路临时占用许可证",
                "普通",
                "《城市道路管理条例》第三十一条",
                1,
                "玄占道",
                &["建筑工程", "市政工程"],
                &[],
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
                &["医疗管理", "口腔门诊部", "医疗美容门诊部"],
                &["诊所"],
            ),
            licence(
                "公共场所卫生许可证",
                "普通",
                "《公共场所卫生管理条例》第八条",
                4,
                "玄卫公字",
                &["酒店管理", "游泳健身", "美容"],
                &["理发店", "美容院", "浴室", "足浴店"],
            ),
            licence(
                "放射诊疗许可证",
                "普通",
                "《放射诊疗管理规定》第十六条",
                4,
                "苏卫放证字",
                &["口腔门诊部", "医疗管理"],
                &["诊所"],
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
                &["化工贸易", "燃气"],
                &[],
            ),
            licence(
                "烟花爆竹经营（零售）许可证",
                "普通",
                "《烟花爆竹安全管理条例》第十九条",
                1,
                "（苏）YH经",
                &[],
                &["烟花爆竹销售点", "五金店"],
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
                &["人力资源", "劳务派遣"],
                &[],
            ),
            licence(
                "人力资源服务许可证",
                "普通",
                "《人力资源市场暂行条例》第十八条",
                5,
                "苏宁玄人服",
                &["人力资源", "企业管理咨询"],
                &[],
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
                &["网络科技", "文化传媒"],
                &["网吧"],
            ),
            licence(
                "娱乐经营许可证",
                "普通",
                "《娱乐场所管理条例》第九条",
                2,
                "320102YL",
                &["娱乐", "文化传媒"],
                &["KTV", "台球室"],
            ),
            licence(
                "旅行社业务经营许可证",
                "普通",
                "《旅行社条例》第六条",
                5,
                "L-JS-",
                &["国际旅行社", "旅行社"],
                &[],
            ),
            licence(
                "出版物经营许可证",
                "普通",
                "《出版管理条例》第三十五条",
                5,
                "新出发玄零字第",
                &["图书发行", "文化传媒"],
                &["书店"],
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
                &["建设工程", "房地产开发"],
                &[],
            ),
            licence(
                "商品房预售许可证",
                "普通",
                "《城市商品房预售管理办法》第六条",
                3,
                "宁房销第",
                &["房地产开发"],
                &[],
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
            &[],
            &[],
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
                &[],
                &[],
            ),
            licence(
                "民办非企业单位登记证书",
                "登记",
                "《民办非企业单位登记管理暂行条例》第十二条",
                5,
                "玄民证字第",
                &[],
                &[],
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
                &["餐饮管理", "酒店管理", "洗车服务", "建设工程"],
                &["洗车店", "餐馆", "洗衣店"],
            ),
            licence(
                "取水许可证",
                "普通",
                "《取水许可和水资源费征收管理条例》第二十三条",
                5,
                "取水（玄）字",
                &["酒店管理", "物业管理"],
                &[],
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
                &["拍卖"],
                &[],
            ),
            licence(
                "成品油零售经营批准证书",
                "特许",
                "《成品油市场管理办法》第八条",
                5,
                "油零售证书第",
                &["石油销售", "加油站管理"],
                &[],
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
            &["酒店管理", "商业管理", "娱乐", "餐饮管理"],
            &["宾馆", "网吧", "KTV"],
        )],
        check_basis: "《消防监督检查规定》第六条",
        levies: &[],
    },
];

/// Units of the neighbouring district, for rows of a unit the adapter does not cover:
/// (USCC, name, case-id short code, document prefix).
pub(super) const FOREIGN_UNITS: [(&str, &str, &str, &str); 2] = [
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
pub(super) const RECEIVING_ORGANS: [&str; 2] = ["南京市公安局玄武分局", "南京市玄武区人民检察院"];

/// An amount column of the export (and the canonical amount it fills).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Amount {
    /// 涉案金额（元）.
    Involved,
    /// 货值金额（元）.
    GoodsValue,
    /// 销售金额（元）.
    Sales,
    /// 违法所得（元）.
    IllegalGains,
}

impl Amount {
    /// What the export calls it.
    pub(super) fn label(self) -> &'static str {
        match self {
            Amount::Involved => "涉案金额",
            Amount::GoodsValue => "货值金额",
            Amount::Sales => "销售金额",
            Amount::IllegalGains => "违法所得",
        }
    }
}

/// An accident's harm, and how the facts tell it.
pub(super) struct Harm {
    /// Clause added to the facts; `{d}` is replaced by the deaths, `{i}` by the serious injuries.
    pub(super) clause: &'static str,
    /// Deaths, a range.
    pub(super) deaths: (u32, u32),
    /// Serious injuries, a range.
    pub(super) injuries: (u32, u32),
    /// Direct economic loss in yuan, a range.
    pub(super) loss: (u64, u64),
}

/// A case of the kind at the crime's level: the starter rule it meets and the facts that make it
/// meet it. Such a case is transferred, or planted as a lead (有案不移).
pub(super) struct Over {
    /// Id of the starter rule (`rules/<id>.toml`).
    pub(super) rule: &'static str,
    /// Amounts over the rule's threshold, ranges in yuan (empty: the kind's own amounts).
    pub(super) amounts: &'static [(Amount, u64, u64)],
    /// Harm over the rule's threshold.
    pub(super) harm: Option<Harm>,
}

impl Over {
    /// Whether the rule matches such a case on its words alone, whatever its amounts: every one
    /// not transferred is a lead.
    pub(super) fn by_words(&self) -> bool {
        self.amounts.is_empty() && self.harm.is_none()
    }
}

/// What the records of one kind of violation hold besides the penalty.
pub(super) struct Facts {
    /// The violation (a [`PenaltyCase`]'s cause).
    pub(super) cause: &'static str,
    /// Amounts recorded, ranges in yuan, below every starter rule's threshold.
    pub(super) amounts: &'static [(Amount, u64, u64)],
    /// An accident some of these cases follow (the share of them) with harm below every threshold.
    pub(super) accident: Option<(f64, Harm)>,
    /// The crime-level case.
    pub(super) over: Option<Over>,
}

/// [`Facts`] of the violations that have any, by cause. Ranges keep the ordinary cases under the
/// starter rules (e.g. 140: 销售金额 < 5万, 货值金额 < 15万 and 3 × 销售 + 货值 < 15万; 338: 违法所得
/// < 30万; 134/137: fewer than three serious injuries, no death, loss < 100万; 115: no casualty,
/// loss < 50万). 违法所得 is also taken from 没收金额 where the penalty confiscates it.
pub(super) static FACTS: [Facts; 16] = [
    Facts {
        cause: "销售过期食品",
        amounts: &[
            (Amount::GoodsValue, 300, 20_000),
            (Amount::Sales, 200, 12_000),
        ],
        accident: None,
        over: Some(Over {
            rule: "market-fake-inferior-products-140",
            amounts: &[
                (Amount::Sales, 52_000, 180_000),
                (Amount::GoodsValue, 10_000, 60_000),
            ],
            harm: None,
        }),
    },
    Facts {
        cause: "销售不合格产品",
        amounts: &[
            (Amount::GoodsValue, 2_000, 40_000),
            (Amount::Sales, 1_000, 30_000),
        ],
        accident: None,
        over: Some(Over {
            rule: "market-fake-inferior-products-140",
            amounts: &[
                (Amount::Sales, 60_000, 260_000),
                (Amount::GoodsValue, 20_000, 120_000),
            ],
            harm: None,
        }),
    },
    Facts {
        cause: "销售侵犯注册商标专用权的商品",
        amounts: &[(Amount::Involved, 3_000, 45_000)],
        accident: None,
        over: None,
    },
    Facts {
        // 工程造价 of the unauthorised building.
        cause: "违法建设",
        amounts: &[(Amount::Involved, 100_000, 3_000_000)],
        accident: None,
        over: None,
    },
    Facts {
        cause: "随意倾倒建筑垃圾",
        amounts: &[(Amount::IllegalGains, 2_000, 80_000)],
        accident: None,
        over: Some(Over {
            rule: "urban-pollution-338",
            amounts: &[(Amount::IllegalGains, 310_000, 900_000)],
            harm: None,
        }),
    },
    Facts {
        cause: "非法行医",
        amounts: &[],
        accident: None,
        over: Some(Over {
            rule: "health-illegal-practice-harm-336",
            amounts: &[],
            harm: Some(Harm {
                clause: "，致{i}名就诊人重伤",
                deaths: (0, 0),
                injuries: (1, 1),
                loss: (20_000, 200_000),
            }),
        }),
    },
    Facts {
        cause: "违规进行有限空间作业",
        amounts: &[],
        accident: Some((
            0.2,
            Harm {
                clause: "，导致发生一起中毒窒息事故，造成{i}人重伤",
                deaths: (0, 0),
                injuries: (1, 2),
                loss: (50_000, 600_000),
            },
        )),
        over: Some(Over {
            rule: "safety-major-liability-accident-134",
            amounts: &[],
            harm: Some(Harm {
                clause: "，导致发生一起中毒窒息生产安全事故，造成{d}人死亡",
                deaths: (1, 2),
                injuries: (0, 1),
                loss: (800_000, 1_800_000),
            }),
        }),
    },
    Facts {
        // 经营额 of the chemicals sold.
        cause: "无证经营危险化学品",
        amounts: &[(Amount::Involved, 20_000, 400_000)],
        accident: None,
        over: Some(Over {
            rule: "safety-dangerous-operation-134-1",
            amounts: &[],
            harm: None,
        }),
    },
    Facts {
        // 工程合同价款 (the fine is 1%–2% of it).
        cause: "未取得施工许可证擅自施工",
        amounts: &[(Amount::Involved, 1_000_000, 30_000_000)],
        accident: None,
        over: None,
    },
    Facts {
        // Its words (no 事故) keep a collapse out of the 134 rule, which is for operating errors.
        cause: "违反建设工程质量管理规定",
        amounts: &[],
        accident: Some((
            0.15,
            Harm {
                clause: "，造成在建工程局部坍塌，致{i}人重伤",
                deaths: (0, 0),
                injuries: (0, 2),
                loss: (100_000, 800_000),
            },
        )),
        over: Some(Over {
            rule: "construction-major-safety-accident-137",
            amounts: &[],
            harm: Some(Harm {
                clause: "，造成在建工程局部坍塌，致{i}人重伤",
                deaths: (0, 0),
                injuries: (3, 5),
                loss: (1_200_000, 3_000_000),
            }),
        }),
    },
    Facts {
        cause: "拒不改正火灾隐患",
        amounts: &[],
        accident: Some((
            0.1,
            Harm {
                clause: "，后该场所发生火灾",
                deaths: (0, 0),
                injuries: (0, 0),
                loss: (10_000, 300_000),
            },
        )),
        over: Some(Over {
            rule: "fire-negligent-fire-115",
            amounts: &[],
            harm: Some(Harm {
                clause: "，后该场所发生火灾，造成{d}人死亡",
                deaths: (1, 2),
                injuries: (0, 2),
                // Under the 50万 of the loss rule (fire-negligent-fire-loss-115).
                loss: (50_000, 400_000),
            }),
        }),
    },
    Facts {
        // 经营数额 of the pirated books.
        cause: "销售侵权盗版出版物",
        amounts: &[(Amount::Involved, 2_000, 45_000)],
        accident: None,
        over: None,
    },
    Facts {
        // 拖欠工资数额.
        cause: "拖欠劳动者工资",
        amounts: &[(Amount::Involved, 30_000, 600_000)],
        accident: None,
        over: None,
    },
    Facts {
        // 吸收资金数额.
        cause: "以预收费名义非法集资",
        amounts: &[(Amount::Involved, 200_000, 3_000_000)],
        accident: None,
        over: None,
    },
    Facts {
        cause: "养老机构非法集资",
        amounts: &[(Amount::Involved, 300_000, 5_000_000)],
        accident: None,
        over: None,
    },
    Facts {
        cause: "收购废旧金属未如实登记",
        amounts: &[(Amount::Involved, 1_000, 50_000)],
        accident: None,
        over: None,
    },
];

/// The facts of a violation, if its records hold any.
pub(super) fn facts_of(cause: &str) -> Option<&'static Facts> {
    FACTS.iter().find(|f| f.cause == cause)
}

/// The rules planted cases meet, in the order rule leads are shared out, each with the (unit,
/// violation) of the first kind of case that meets it.
pub(super) fn rule_kinds() -> Vec<(&'static str, usize, usize)> {
    let mut out: Vec<(&'static str, usize, usize)> = Vec::new();
    for f in &FACTS {
        let Some(over) = &f.over else { continue };
        if out.iter().any(|(r, ..)| *r == over.rule) {
            continue;
        }
        let at = UNITS.iter().enumerate().find_map(|(u, unit)| {
            let c = unit.penalties.iter().position(|p| p.cause == f.cause)?;
            Some((u, c))
        });
        if let Some((u, c)) = at {
            out.push((over.rule, u, c));
        }
    }
    // The keyword rule first: its cases are leads unless transferred, so it always gets one.
    out.sort_by_key(|(r, ..)| *r != "safety-dangerous-operation-134-1");
    out
}
